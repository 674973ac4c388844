// `sprig data SOURCE`: what a data source holds (classes with names and counts per split,
// image size, channels, how it was split); its conversion to IDX; and the files the board
// takes (`sprig-edge finetune` shots and labels, `sprig-edge run` images and labels).

import Foundation
import SprigTrain

let dataCommand = Command(
    name: "data",
    summary: "Show a data source's classes, counts, image size and channels; convert it to IDX; write the board's shot and test files.",
    usage: "sprig data SOURCE [--out DIR] [--device-files DIR --classes 5-9 --shots 5 --seed 1] [--size HxW] [--channels 1|3] [--json]",
    positionals: 1...1,
    options: [
        OptionSpec(name: "out", value: "DIR", help: "Write the source as the four IDX files that --data DIR reads (images N×H×W, or N×H×W×C for C > 1), and classes.txt."),
        OptionSpec(name: "device-files", value: "DIR", help: "Write shots.idx, shots-labels.idx (for sprig-edge finetune), images.idx, labels.idx (for sprig-edge run) and classes.txt."),
        OptionSpec(name: "classes", value: "SPEC", help: "With --device-files: the classes the board learns, relabelled 0..n-1 in this order.", defaultValue: "all"),
        OptionSpec(name: "shots", value: "K", help: "With --device-files: training images per class in shots.idx.", defaultValue: "5"),
        OptionSpec(name: "seed", value: "S", help: "With --device-files: seed of the choice of shots.", defaultValue: "1"),
        OptionSpec(name: "json", value: nil, help: "Print one JSON object (source, kind, height, width, channels, classes with counts, split, files)."),
    ] + imageFolderOptionSpecs,
    details: """
    SOURCE is builtin, fashion-mnist, digits, a directory of IDX files, or an image folder (DIR/CLASS/*.png|jpg|pgm|ppm,
    or DIR/train/CLASS/… and DIR/test/CLASS/…). Shots come from the training split, images.idx and labels.idx
    hold every test image of the chosen classes, so the board is scored on images it did not learn from.

    Example (the README's board commands):
      sprig data digits --classes 5-9 --shots 5 --seed 1 --device-files board/
      sprig-edge finetune model.sprig board/shots.idx board/shots-labels.idx --out tuned.sprig
      sprig-edge run tuned.sprig board/images.idx board/labels.idx

    """,
    run: runData)

func runData(_ a: ParsedArguments) throws {
    var args = a
    args.values["data"] = a.positional[0]
    let (source, splits, _) = try loadDataSource(args)
    let train = splits.train, test = splits.test
    let present = Array(Set(train.labelsPresent + test.labelsPresent)).sorted()
    let labelCount = max((present.last ?? -1) + 1, splits.classNames?.count ?? 0)
    func name(_ c: Int) -> String { splits.names(of: [c])[0] }
    let trainCounts = train.classCounts, testCounts = test.classCounts
    var written: [String] = []
    if let out = a.string("out") {
        try Interrupt.createOutputDirectory(out)
        let n = DataSource.fileNames
        func path(_ file: String) -> String { (out as NSString).appendingPathComponent(file) }
        try train.write(imagesPath: path(n.trainImages), labelsPath: path(n.trainLabels))
        try test.write(imagesPath: path(n.testImages), labelsPath: path(n.testLabels))
        let namesLine = (0..<labelCount).map(name).joined(separator: ",") + "\n"
        try writeFileAtomically(Array(namesLine.utf8), to: path("classes.txt"))
        written += [n.trainImages, n.trainLabels, n.testImages, n.testLabels, "classes.txt"].map(path)
    }
    var deviceClasses: [Int] = []
    if let dir = a.string("device-files") {
        deviceClasses = try ClassSelection.parse(a.string("classes", default: "all"), present: train.labelsPresent)
        let shots = try a.int("shots", default: 5, range: 1...10_000)
        let seed = UInt64(try a.int("seed", default: 1, range: 0...Int.max))
        try Interrupt.createOutputDirectory(dir)
        let summary = try writeDeviceFiles(train: train, test: test, classes: deviceClasses, names: deviceClasses.map(name),
                                           shots: shots, seed: seed, directory: dir, fileNames: .plain)
        written += summary.paths
        if !a.flag("json") {
            printError("sprig data: \(summary.shotCount) shots (\(shots) of each of classes \(deviceClasses.map(String.init).joined(separator: ",")), "
                + "relabelled 0-\(deviceClasses.count - 1)) and \(summary.imageCount) held-out test images in \(dir)")
        }
    } else if a.string("classes") != nil || a.string("shots") != nil || a.string("seed") != nil {
        throw UsageError(description: "--classes, --shots and --seed choose the board's files; give --device-files DIR too")
    }
    if a.flag("json") {
        var o = JSONObject()
        o.set("source", source.description)
        o.set("kind", source.kind)
        o.set("height", train.rows)
        o.set("width", train.cols)
        o.set("channels", train.channels)
        o.set("train_count", train.count)
        o.set("test_count", test.count)
        let classes = (0..<labelCount).map { c in
            "{\"label\":\(c),\"name\":\(jsonQuote(name(c))),\"train\":\(trainCounts[c]),\"test\":\(testCounts[c])}"
        }
        o.set("classes", raw: "[" + classes.joined(separator: ",") + "]")
        if let split = splits.split {
            o.set("split", raw: "{\"made_by_sprig\":true,\"stratified\":true,\"test_fraction\":\(jsonNumber(split.testFraction)),\"seed\":\(split.seed)}")
        } else {
            o.set("split", raw: "{\"made_by_sprig\":false}")
        }
        o.set("mean", raw: "[" + Normalization.computed(from: train).mean.map { jsonNumber(Double($0)) }.joined(separator: ",") + "]")
        o.set("std", raw: "[" + Normalization.computed(from: train).std.map { jsonNumber(Double($0)) }.joined(separator: ",") + "]")
        o.set("files", raw: "[" + written.map(jsonQuote).joined(separator: ",") + "]")
        print(o.text)
        return
    }
    var s = "\(source) (\(source.kind)): \(train.count) training and \(test.count) test images of "
        + "\(train.rows)×\(train.cols), \(train.channels == 1 ? "1 channel (gray)" : "\(train.channels) channels (RGB)")\n"
    if let split = splits.split {
        s += "split: made by Sprig, stratified, test fraction \(split.testFraction), seed \(split.seed)\n"
    } else {
        s += "split: the source's own\n"
    }
    let n = Normalization.computed(from: train)
    s += "training-split mean " + n.mean.map { String(format: "%.4f", $0) }.joined(separator: ",")
        + ", std " + n.std.map { String(format: "%.4f", $0) }.joined(separator: ",") + " (of x/255)\n"
    let width = max(4, (0..<labelCount).map { name($0).count }.max() ?? 4)
    s += "label  " + "name".padding(toLength: width, withPad: " ", startingAt: 0) + "  train   test\n"
    for c in 0..<labelCount {
        s += String(format: "%5d  ", c) + name(c).padding(toLength: width, withPad: " ", startingAt: 0)
            + String(format: "  %5d  %5d", trainCounts[c], testCounts[c]) + "\n"
    }
    for path in written { s += "wrote \(path)\n" }
    print(s, terminator: "")
}
