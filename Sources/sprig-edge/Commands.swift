#if canImport(SprigRuntime)
import SprigRuntime
#endif

// An inference-only build (`tools/cross-build TARGET --inference-only` passes
// `-D SPRIG_INFERENCE_ONLY`) leaves Finetune.swift out: nothing then refers to the
// runtime's fine-tuning code, and the link's --gc-sections drops it.
#if SPRIG_INFERENCE_ONLY
let finetuneUsage = ""
#else
let finetuneUsage = """
      sprig-edge finetune MODEL.sprig SHOTS.idx LABELS.idx --out TUNED.sprig [--method M] [--layers L]
                          [--epochs N] [--seed S] [--augment A] [--names A,B,C] [--json] [--max-macs N]

    """
#endif

let usage = """
    sprig-edge: run and inspect .sprig models on a device.

    Usage:
      sprig-edge info MODEL.sprig [--json]
      sprig-edge run MODEL.sprig IMAGES.idx [LABELS.idx] [--json | --logits] [--max-macs N]
      sprig-edge bench MODEL.sprig [--runs N] [--per-op] [--json] [--max-macs N]

    """ + finetuneUsage + """
      sprig-edge COMMAND --help
      sprig-edge --version    the release, the commit it was built from, the blob format it reads

    IDX files are uncompressed, as in MNIST: a gzip file is refused with "gunzip it first".
    `sprig data` on the host writes them (docs/deploy.md).
    --max-macs N: refuse a model whose one invoke needs more than N multiply-accumulates
    (counted exactly at load; `info` prints them). Default 1000000000 (1 G); the models
    Sprig makes need 0.1-10 M.
    Exit status: 0 success, 1 bad input (the message names the file and field), 2 bad usage.

    """

let helps: [(String, String)] = {
    var helps = commandHelps
    #if !SPRIG_INFERENCE_ONLY
    helps.append(("finetune", finetuneHelp))
    #endif
    return helps
}()

let commandHelps: [(String, String)] = [
    ("info", """
        sprig-edge info MODEL.sprig [--json]
          Validates the blob and prints its ops, shapes, parameter count, blob bytes,
          arena bytes, CRC status and the work of one invoke (multiply-accumulates and
          other element operations, in total and per op, exact). --json prints one
          JSON object (macs, element_ops, and per op).

        """),
    ("run", """
        sprig-edge run MODEL.sprig IMAGES.idx [LABELS.idx] [--json | --logits]
          Runs the model on every image and prints one predicted class per line: its
          index, and its name when the blob stores class names (`sprig inspect` shows
          them as labels): "8 bag". With LABELS.idx, prints the accuracy and, per class,
          the correct and total counts with the names. --json prints one JSON object
          (predictions and names, or accuracy, correct, count and per_class). --logits prints, per image,
          the output vector as hexadecimal IEEE-754 bit patterns (exact) and the argmax.
          --max-macs N refuses a model that needs more per image (default 1000000000).

        """),
    ("bench", """
        sprig-edge bench MODEL.sprig [--runs N] [--per-op] [--json]
          Times N invokes (default 1000, after 50 warm-up runs) at batch 1 and prints
          the median, min and max latency and the arena bytes. --per-op also times each
          op alone (median over the runs). --json prints seconds.
          --max-macs N refuses a model that needs more per invoke (default 1000000000).

        """),
]

/// Parsed command-line words: positionals, flags, and flag values.
struct Arguments {
    var positional: [String] = []
    var json = false
    var help = false
    var runs: Int?
    var logits = false
    var perOp = false
    // finetune
    var method: String?
    var epochs: Int?
    var seed: UInt64?
    var augment: Int?
    var layers: Int?
    var out: String?
    /// `--names` (or its older spelling `--classes`): the new classes' names, comma-separated.
    var names: String?
    /// The most multiply-accumulates one invoke may need (`--max-macs`).
    var maxMacs: UInt64 = defaultMaxMacs
    /// The options given, in order (to refuse those that do not apply to the command).
    var seen: [String] = []

    /// Options each command accepts (besides --help).
    static let allowed: [(String, [String])] = [
        ("info", ["--json"]),
        ("run", ["--json", "--logits", "--max-macs"]),
        ("bench", ["--runs", "--per-op", "--json", "--max-macs"]),
        ("finetune", ["--method", "--out", "--names", "--classes", "--epochs", "--augment", "--layers", "--seed", "--json",
                      "--max-macs"]),
    ]

    init(_ words: ArraySlice<String>, command: String) throws(UsageError) {
        try self.init(words)
        let allowed = lookup(Arguments.allowed, command) ?? []
        for option in seen where !allowed.contains(where: { Word($0) == Word(option) }) {
            throw UsageError(message: "\(option) does not apply to \(command)")
        }
    }

    init(_ words: ArraySlice<String>) throws(UsageError) {
        var it = words.makeIterator()
        while let w = it.next() {
            let word = Word(w)
            if word.starts(with: "--") && word != "--help" { seen.append(w) }
            switch word {
            case "--json": json = true
            case "--help", "-h": help = true
            case "--logits": logits = true
            case "--per-op": perOp = true
            case "--runs":
                guard let v = it.next() else { throw UsageError(message: "--runs needs a number") }
                guard let n = Int(v), n >= 1, n <= 10_000_000 else {
                    throw UsageError(message: "--runs: '\(v)' is not a whole number from 1 to 10000000")
                }
                runs = n
            case "--method", "--out", "--names", "--classes":
                guard let v = it.next() else { throw UsageError(message: "\(w) needs a value") }
                if word == "--method" { method = v } else if word == "--out" { out = v } else { names = v }
            case "--epochs":
                guard let v = it.next(), let n = Int(v), n >= 1, n <= 10_000 else {
                    throw UsageError(message: "--epochs needs a whole number from 1 to 10000")
                }
                epochs = n
            case "--augment":
                guard let v = it.next(), let n = Int(v), n >= 0, n <= 2 else {
                    throw UsageError(message: "--augment needs 0, 1 or 2")
                }
                augment = n
            case "--layers":
                guard let v = it.next(), let n = Int(v), n >= 1, n <= 255 else {
                    throw UsageError(message: "--layers needs a whole number from 1 to 255")
                }
                layers = n
            case "--max-macs":
                guard let v = it.next(), let n = UInt64(v), n >= 1 else {
                    throw UsageError(message: "--max-macs needs a whole number from 1 to 18446744073709551615")
                }
                maxMacs = n
            case "--seed":
                guard let v = it.next(), let n = UInt64(v) else {
                    throw UsageError(message: "--seed needs a whole number from 0 to 18446744073709551615")
                }
                seed = n
            default:
                if word.starts(with: "-") && w.utf8.count > 1 { throw UsageError(message: "unknown option '\(w)'") }
                positional.append(w)
            }
        }
    }
}

struct UsageError: Error {
    var message: String
}

/// Runs one command; returns the exit status.
func edgeMain(_ args: [String]) -> Int32 {
    guard let command = args.first else {
        writeErr(usage)
        return 2
    }
    let word = Word(command)
    if word == "--help" || word == "-h" || word == "help" {
        writeOut(usage)
        return 0
    }
    if word == "--version" {
        guard args.count == 1 else {
            writeErr("sprig-edge: --version takes no other arguments\n\n" + usage)
            return 2
        }
        writeOut(versionText())
        return 0
    }
    guard let help = lookup(helps, command) else {
        if word == "finetune" {
            writeErr("sprig-edge: finetune is not in this build (an inference-only build: info, run, bench)\n\n" + usage)
            return 2
        }
        writeErr("sprig-edge: unknown command '\(command)'\n\n" + usage)
        return 2
    }
    let parsed: Arguments
    do {
        parsed = try Arguments(args.dropFirst(), command: command)
    } catch {
        writeErr("sprig-edge \(command): \(error.message)\n\n" + help)
        return 2
    }
    if parsed.help {
        writeOut(help)
        return 0
    }
    do {
        switch word {
        case "info": return try info(parsed, help)
        case "run": return try run(parsed, help)
        case "bench": return try bench(parsed, help)
        default:
            #if SPRIG_INFERENCE_ONLY
            return 2  // not reached: `helps` has no other command
            #else
            return try finetune(parsed, help)
            #endif
        }
    } catch {
        writeErr("sprig-edge \(command): \(error.message)\n")
        return 1
    }
}

/// The default of `--max-macs`: 1 G multiply-accumulates per invoke, about a
/// second on a Cortex-A53 core; Sprig's reference CNN needs 0.5 M, the cnn
/// supernet 8.8 M.
let defaultMaxMacs: UInt64 = 1_000_000_000

/// A failure to report: one line, exit 1.
struct EdgeError: Error {
    var message: String
}

/// A loaded model and the buffer that holds it.
struct LoadedModel {
    var buffer: UnsafeMutableRawBufferPointer
    var model: Model
    var path: String

    init(_ path: String) throws(EdgeError) {
        let buffer: UnsafeMutableRawBufferPointer
        do {
            buffer = try readFile(path)
        } catch {
            throw EdgeError(message: "\(error.path): \(error.reason)")
        }
        if let message = gzipMessage(path, UnsafeRawBufferPointer(buffer)) {
            buffer.deallocate()
            throw EdgeError(message: message)
        }
        do {
            model = try Model(bytes: UnsafeRawBufferPointer(buffer))
        } catch {
            buffer.deallocate()
            throw EdgeError(message: "\(path): \(error.message)")
        }
        self.buffer = buffer
        self.path = path
    }

    func free() { buffer.deallocate() }

    /// Refuses a model whose one invoke needs more than `limit` multiply-accumulates.
    func checkWork(_ limit: UInt64) throws(EdgeError) {
        guard model.work.macs <= limit else {
            throw EdgeError(message: "\(path): one invoke needs \(model.work.macs) multiply-accumulates, more than "
                + "--max-macs \(limit)\(limit == defaultMaxMacs ? " (the default)" : ""); pass a larger --max-macs to run it")
        }
    }

    /// An interpreter bound to a new arena of exactly the plan's size (the caller releases the
    /// arena with `releaseBuffer`).
    func bindInterpreter() throws(EdgeError) -> (arena: UnsafeMutableRawBufferPointer, interpreter: Interpreter) {
        guard let arena = allocateBuffer(model.arenaBytes) else {
            throw EdgeError(message: "\(path): arena_bytes: is \(model.arenaBytes), more memory than this device can allocate")
        }
        do {
            return (arena, try Interpreter(model: model, arena: arena))
        } catch {
            releaseBuffer(arena)
            throw EdgeError(message: "\(path): \(error.message)")
        }
    }
}

/// "FILE is gzip-compressed: gunzip it first" for bytes that start with gzip's magic
/// 1f 8b (RFC 1952), where an IDX file or a blob is expected; nil otherwise.
func gzipMessage(_ path: String, _ bytes: UnsafeRawBufferPointer) -> String? {
    guard bytes.count >= 2, bytes[0] == 0x1F, bytes[1] == 0x8B else { return nil }
    return "\(path) is gzip-compressed: gunzip it first (sprig-edge reads uncompressed IDX files and blobs)"
}

/// `index`, and the blob's name for that class when it stores one: `3 bag`.
func predictionText(_ model: Model, _ index: Int) -> String {
    guard let name = model.className(index) else { return "\(index)" }
    return "\(index) \(text(name))"
}

func usageFail(_ message: String, _ help: String) -> Int32 {
    writeErr("sprig-edge: \(message)\n\n" + help)
    return 2
}

// MARK: info

func info(_ a: Arguments, _ help: String) throws(EdgeError) -> Int32 {
    guard a.positional.count == 1 else { return usageFail("info takes one MODEL.sprig", help) }
    let loaded = try LoadedModel(a.positional[0])
    defer { loaded.free() }
    let m = loaded.model
    let name = text(m.metadata(key: "name"))
    let precision = text(m.metadata(key: "precision"))
    let labels = text(m.metadata(key: "labels"))
    if a.json {
        var ops = ""
        for o in 0..<m.opCount {
            let op = m.op(o)
            if o > 0 { ops += "," }
            ops += "{\"op\":\(jsonString(op.opcode.name.description)),\"activation\":\(jsonString(op.activation.name.description))"
            ops += ",\"input_shape\":\(shapeJSON(m.tensor(op.inputs.0))),\"output_shape\":\(shapeJSON(m.tensor(op.output)))"
            let w = m.work(ofOp: o)
            ops += ",\"dtype\":\(jsonString(m.tensor(op.inputs.0).dtype.name.description))"
            ops += ",\"macs\":\(w.macs),\"element_ops\":\(w.elementOps)}"
        }
        writeOut("{\"file\":\(jsonString(loaded.path)),\"name\":\(jsonString(name)),\"precision\":\(jsonString(precision))"
            + ",\"labels\":\(jsonString(labels))"
            + ",\"blob_bytes\":\(m.bytes.count),\"arena_bytes\":\(m.arenaBytes)"
            + ",\"finetune_arena_bytes\":\(m.finetuneArenaBytes),\"params\":\(m.parameterCount)"
            + ",\"macs\":\(m.work.macs),\"element_ops\":\(m.work.elementOps)"
            + ",\"crc32\":\"\(hex32(m.crc))\",\"crc_ok\":true,\"version\":\(BlobLayout.version),\"ops\":[\(ops)]}\n")
        return 0
    }
    var s = "\(loaded.path): \(m.bytes.count) bytes, version \(BlobLayout.version), CRC 0x\(hex32(m.crc)) ok\n"
    if !name.isEmpty { s += "name:       \(name)\n" }
    if !precision.isEmpty { s += "precision:  \(precision)\n" }
    if !labels.isEmpty { s += "classes:    \(m.classNameCount): \(labels)\n" }
    s += "params:     \(m.parameterCount)\n"
    s += "work:       \(m.work.macs) MACs, \(m.work.elementOps) element ops per invoke\n"
    s += "arena:      \(m.arenaBytes) bytes (inference)"
    s += m.finetuneArenaBytes > 0
        ? ", \(m.finetuneArenaBytes) bytes (fine-tuning, \(m.finetuneMaxClasses) classes × \(m.finetuneMaxShots) shots)\n"
        : ", no fine-tuning plan\n"
    for i in 0..<m.ioCount {
        let e = m.io(i)
        let t = m.tensor(e.tensor)
        s += e.role == 0 ? "input:      " : "output:     "
        s += "#\(e.tensor) \(shapeText(t)) \(t.dtype.name.description)"
        if e.role == 0 { s += " (pixels normalised as (p/255 - \(number(Double(e.mean))))/\(number(Double(e.std))))" }
        s += "\n"
    }
    s += "ops:\n"
    s += "  #  " + padRight("op", 18) + padRight("act", 6) + padRight("dtype", 6) + padRight("input", 16)
        + padRight("output", 16) + pad("MACs", 10) + "\n"
    for o in 0..<m.opCount {
        let op = m.op(o)
        let x = m.tensor(op.inputs.0), y = m.tensor(op.output)
        s += pad("\(o)", 3) + "  " + padRight(op.opcode.name.description, 18) + padRight(op.activation.name.description, 6)
        s += padRight(x.dtype.name.description, 6) + padRight(shapeText(x), 16) + padRight(shapeText(y), 16)
        s += pad("\(m.work(ofOp: o).macs)", 10) + "\n"
    }
    writeOut(s)
    return 0
}

func text(_ bytes: UnsafeRawBufferPointer?) -> String {
    guard let b = bytes else { return "" }
    return String(decoding: b, as: UTF8.self)
}

func shapeText(_ t: TensorInfo) -> String {
    var s = "["
    for i in 0..<t.rank { s += (i > 0 ? "," : "") + "\(t.dim(i))" }
    return s + "]"
}

func shapeJSON(_ t: TensorInfo) -> String { shapeText(t) }

// MARK: run

func run(_ a: Arguments, _ help: String) throws(EdgeError) -> Int32 {
    guard a.positional.count == 2 || a.positional.count == 3 else {
        return usageFail("run takes MODEL.sprig IMAGES.idx [LABELS.idx]", help)
    }
    let loaded = try LoadedModel(a.positional[0])
    defer { loaded.free() }
    try loaded.checkWork(a.maxMacs)
    let imagesPath = a.positional[1]
    let imageFile = try readIDX(imagesPath)
    defer { imageFile.buffer.deallocate() }
    let images = imageFile.view
    let (arena, interpreter) = try loaded.bindInterpreter()
    defer { releaseBuffer(arena) }
    let need = interpreter.inputInfo.elementCount
    guard images.count > 0 else {
        throw EdgeError(message: "\(imagesPath): dims[0]: is 0, there are no images to run")
    }
    guard images.itemBytes == need else {
        throw EdgeError(message: "\(imagesPath): dims: each image has \(images.itemBytes) pixels, the model's input needs \(need)")
    }
    var labels: IDXView? = nil
    var labelFile: (buffer: UnsafeMutableRawBufferPointer, view: IDXView)? = nil
    if a.positional.count == 3 {
        let path = a.positional[2]
        let file = try readIDX(path)
        labelFile = file
        let view = file.view
        guard view.dims.count == 1 else {
            file.buffer.deallocate()
            throw EdgeError(message: "\(path): ndim: is \(view.dims.count), labels need 1")
        }
        guard view.count == images.count else {
            file.buffer.deallocate()
            throw EdgeError(message: "\(path): dims[0]: \(view.count) labels for \(images.count) images in \(imagesPath)")
        }
        for i in 0..<view.count where Int(view.data[i]) >= interpreter.outputCount {
            file.buffer.deallocate()
            throw EdgeError(message: "\(path): label[\(i)]: is \(view.data[i]), the model has \(interpreter.outputCount) classes")
        }
        labels = view
    }
    defer { labelFile?.buffer.deallocate() }

    let m = loaded.model
    let classes = interpreter.outputCount
    var correct = 0
    var classCorrect = [Int](repeating: 0, count: classes)
    var classCount = [Int](repeating: 0, count: classes)
    var predictions = ""
    var json = ""
    var namesJSON = ""
    for i in 0..<images.count {
        do {
            try interpreter.setInput(pixels: images.item(i))
        } catch {
            throw EdgeError(message: "\(imagesPath): image \(i): \(error.message)")
        }
        interpreter.invoke()
        let p = interpreter.argmax()
        if let l = labels {
            let truth = Int(l.data[i])
            classCount[truth] += 1
            if truth == p {
                correct += 1
                classCorrect[truth] += 1
            }
        }
        if a.logits {
            var line = ""
            for k in 0..<interpreter.outputCount { line += hex32(interpreter.output(k).bitPattern) + " " }
            predictions += line + "argmax=\(p)\n"
        } else if labels == nil {
            if a.json {
                json += (i > 0 ? "," : "") + "\(p)"
                namesJSON += (i > 0 ? "," : "") + jsonString(text(m.className(p)))
            } else {
                predictions += predictionText(m, p) + "\n"
            }
        }
    }
    let named = m.classNameCount > 0
    if a.logits {
        writeOut(predictions)
    } else if labels != nil {
        let accuracy = images.count > 0 ? Double(correct) / Double(images.count) : 0
        if a.json {
            var perClass = ""
            for c in 0..<classes where classCount[c] > 0 {
                perClass += (perClass.isEmpty ? "" : ",") + "{\"class\":\(c)"
                    + (named ? ",\"name\":\(jsonString(text(m.className(c))))" : "")
                    + ",\"correct\":\(classCorrect[c]),\"count\":\(classCount[c])}"
            }
            writeOut("{\"accuracy\":\(number(accuracy)),\"correct\":\(correct),\"count\":\(images.count)"
                + ",\"per_class\":[\(perClass)]}\n")
        } else {
            var s = "accuracy: \(fixed(accuracy * 100, 2))% (\(correct)/\(images.count))\n"
            for c in 0..<classes where classCount[c] > 0 {
                s += "  \(predictionText(m, c)): \(fixed(100 * Double(classCorrect[c]) / Double(classCount[c]), 2))% "
                    + "(\(classCorrect[c])/\(classCount[c]))\n"
            }
            writeOut(s)
        }
    } else if a.json {
        writeOut("{\"predictions\":[\(json)]" + (named ? ",\"names\":[\(namesJSON)]" : "") + ",\"count\":\(images.count)}\n")
    } else {
        writeOut(predictions)
    }
    return 0
}

func readIDX(_ path: String) throws(EdgeError) -> (buffer: UnsafeMutableRawBufferPointer, view: IDXView) {
    let buffer: UnsafeMutableRawBufferPointer
    do {
        buffer = try readFile(path)
    } catch {
        throw EdgeError(message: "\(error.path): \(error.reason)")
    }
    if let message = gzipMessage(path, UnsafeRawBufferPointer(buffer)) {
        buffer.deallocate()
        throw EdgeError(message: message)
    }
    do {
        return (buffer, try IDXView(UnsafeRawBufferPointer(buffer)))
    } catch {
        buffer.deallocate()
        throw EdgeError(message: "\(path): \(error.field): \(error.detail)")
    }
}

// MARK: bench

func bench(_ a: Arguments, _ help: String) throws(EdgeError) -> Int32 {
    guard a.positional.count == 1 else { return usageFail("bench takes one MODEL.sprig", help) }
    let loaded = try LoadedModel(a.positional[0])
    defer { loaded.free() }
    try loaded.checkWork(a.maxMacs)
    let m = loaded.model
    let (arena, interpreter) = try loaded.bindInterpreter()
    defer { releaseBuffer(arena) }
    // A fixed, non-trivial input: a diagonal gradient of pixels.
    let count = interpreter.inputInfo.elementCount
    var pixels = [UInt8](repeating: 0, count: count)
    for i in 0..<count { pixels[i] = UInt8(truncatingIfNeeded: (i * 37) & 0xFF) }
    let failure: SprigError? = pixels.withUnsafeBytes { (p) -> SprigError? in
        do throws(SprigError) {
            try interpreter.setInput(pixels: p)
            return nil
        } catch {
            return error
        }
    }
    if let e = failure { throw EdgeError(message: "\(loaded.path): \(e.message)") }
    let runs = a.runs ?? 1000
    for _ in 0..<min(50, runs) { interpreter.invoke() }
    var times = [Double](repeating: 0, count: runs)
    for r in 0..<runs {
        let t0 = now()
        interpreter.invoke()
        times[r] = now() - t0
    }
    times.sort()
    let median = runs % 2 == 1 ? times[runs / 2] : (times[runs / 2 - 1] + times[runs / 2]) / 2
    var perOp = ""
    var perOpJSON = ""
    if a.perOp {
        var opTimes = [Double](repeating: 0, count: runs)
        for o in 0..<m.opCount {
            for r in 0..<runs {
                let t0 = now()
                interpreter.run(o)
                opTimes[r] = now() - t0
            }
            opTimes.sort()
            let t = opTimes[runs / 2]
            let op = m.op(o)
            perOp += "  " + pad("\(o)", 3) + "  " + padRight(op.opcode.name.description, 18)
                + padRight(m.tensor(op.inputs.0).dtype.name.description, 5)
                + padRight(shapeText(m.tensor(op.output)), 14) + pad(fixed(t * 1e6, 2), 9) + " us  "
                + pad(fixed(median > 0 ? 100 * t / median : 0, 1), 5) + "%\n"
            perOpJSON += (o > 0 ? "," : "") + "{\"op\":\(jsonString(op.opcode.name.description)),\"seconds\":\(number(t))}"
        }
    }
    let lo = times[0], hi = times[runs - 1]
    if a.json {
        writeOut("{\"file\":\(jsonString(loaded.path)),\"runs\":\(runs),\"latency_seconds_median\":\(number(median))"
            + ",\"latency_seconds_min\":\(number(lo)),\"latency_seconds_max\":\(number(hi))"
            + ",\"arena_bytes\":\(m.arenaBytes),\"blob_bytes\":\(m.bytes.count)"
            + ",\"instruction_set\":\(jsonString(kernelInstructionSet))"
            + (a.perOp ? ",\"per_op\":[\(perOpJSON)]" : "") + "}\n")
    } else {
        writeOut("\(loaded.path): \(runs) invokes at batch 1\n"
            + "  latency  median \(fixed(median * 1e6, 1)) us   min \(fixed(lo * 1e6, 1)) us   max \(fixed(hi * 1e6, 1)) us\n"
            + "  arena    \(m.arenaBytes) bytes\n"
            + "  blob     \(m.bytes.count) bytes\n"
            + "  kernels  \(kernelInstructionSet)\n"
            + (a.perOp ? "  per op (median):\n" + perOp : ""))
    }
    return 0
}
