// sprig: the host tool. Train, prune, compile, inspect, run, fine-tune.
// See docs/cli.md. Exit status: 0 success, 1 bad input, 2 bad usage.

import Foundation
import SprigTrain

let commands: [Command] = [
    trainCommand,
    evalCommand,
    describeCommand,
    pruneCommand,
    transferCommand,
    demoCommand,
    compileCommand,
    benchCommand,
    inspectCommand,
    compareCommand,
    exportCommand,
    importCommand,
    runCommand,
    fixturesCommand,
    makeRGBCommand,
    dataCommand,
    finetuneCommand,
]

let toolUsage: String = {
    var s = "sprig: train, prune and compile networks for the Sprig device runtime.\n\nUsage: sprig COMMAND [options]\n\nCommands:\n"
    for c in commands { s += "  " + c.name.padding(toLength: 12, withPad: " ", startingAt: 0) + c.summary + "\n" }
    s += "\nRun `sprig COMMAND --help` for a command's options, `sprig --version` for the release,\n"
    s += "the commit it was built from and the blob format it reads and writes.\n"
    return s
}()

func sprigMain(_ args: [String]) -> Int32 {
    Interrupt.install(name: "sprig")
    guard let name = args.first else {
        printError(toolUsage)
        return 2
    }
    if name == "--help" || name == "-h" || name == "help" {
        print(toolUsage, terminator: "")
        return 0
    }
    if name == "--version" {
        guard args.count == 1 else {
            printError("sprig: --version takes no other arguments\n\n" + toolUsage)
            return 2
        }
        print(versionText(), terminator: "")
        return 0
    }
    guard let command = commands.first(where: { $0.name == name }) else {
        printError("sprig: unknown command '\(name)'\n\n" + toolUsage)
        return 2
    }
    do {
        let parsed = try parse(Array(args.dropFirst()), for: command)
        if parsed.flag("help") {
            print(command.help, terminator: "")
            return 0
        }
        try command.run(parsed)
        return 0
    } catch let e as UsageError {
        printError("sprig \(name): \(e.description)\n\n" + command.help)
        return 2
    } catch {
        printError("sprig \(name): \(plainDescription(error))")
        return 1
    }
}


/// An error as one sentence for the user. Sprig's own errors describe themselves;
/// a Foundation error is reduced to its file and its POSIX reason, never its domain
/// and code dump.
func plainDescription(_ error: any Error) -> String {
    let text = "\(error)"
    if !text.contains("Domain=") { return text }
    let ns = error as NSError
    let file = (ns.userInfo[NSFilePathErrorKey] as? String).map { "'\($0)': " } ?? ""
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return file + String(cString: strerror(Int32(underlying.code)))
    }
    if ns.domain == NSPOSIXErrorDomain { return file + String(cString: strerror(Int32(ns.code))) }
    return file + "failed (\(ns.localizedFailureReason ?? ns.localizedDescription))"
}

let status = sprigMain(Array(CommandLine.arguments.dropFirst()))
fflush(nil)
exit(status)
