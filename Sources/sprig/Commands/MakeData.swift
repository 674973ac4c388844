// `sprig make-rgb`: a 3-channel data set from a gray one, for trying the RGB path
// (and for the tests): each image centred on a larger black canvas and tinted with
// a random colour per image (SprigTrain/Data/Synthetic.swift). Writes the four IDX
// files that `--data DIR` reads.

import Foundation
import SprigTrain

let makeRGBCommand = Command(
    name: "make-rgb",
    summary: "Write a padded, tinted RGB copy of a gray data set (e.g. Fashion-MNIST as 32×32×3) as IDX files.",
    usage: "sprig make-rgb [--data SOURCE] [--side 32] [--seed 1] [--per-class N] --out DIR",
    positionals: 0...0,
    options: [
        OptionSpec(name: "data", value: "SOURCE", help: "The gray set: builtin, fashion-mnist or a directory of IDX files.", defaultValue: "builtin"),
        OptionSpec(name: "side", value: "S", help: "Height and width of the result (at least the images').", defaultValue: "32"),
        OptionSpec(name: "seed", value: "S", help: "Seed of the tints.", defaultValue: "1"),
        OptionSpec(name: "per-class", value: "N", help: "Keep the first N training and N/5 test images of each class (0: all).", defaultValue: "0"),
        OptionSpec(name: "out", value: "DIR", help: "Directory for the four .gz IDX files (created)."),
        OptionSpec(name: "json", value: nil, help: "Print one JSON object (out, shape, train_count, test_count)."),
    ],
    run: runMakeRGB)

func runMakeRGB(_ a: ParsedArguments) throws {
    guard let out = a.string("out") else { throw UsageError(description: "--out DIR is required") }
    let source = DataSource(argument: a.string("data", default: "builtin"))
    let side = try a.int("side", default: 32, range: 1...4096)
    let seed = UInt64(try a.int("seed", default: 1, range: 0...Int.max))
    let perClass = try a.int("per-class", default: 0, range: 0...1_000_000)
    let splits = try source.load()
    func firstPerClass(_ d: Dataset, _ n: Int) -> Dataset {
        guard n > 0 else { return d }
        var seen = [Int](repeating: 0, count: 256)
        var keep: [Int] = []
        for i in 0..<d.count where seen[Int(d.labels[i])] < n {
            seen[Int(d.labels[i])] += 1
            keep.append(i)
        }
        return d.subset(keep)
    }
    let train = try firstPerClass(splits.train, perClass).paddedAndTinted(side: side, seed: seed)
    let test = try firstPerClass(splits.test, max(perClass / 5, perClass > 0 ? 1 : 0)).paddedAndTinted(side: side, seed: seed &+ 1)
    try Interrupt.createOutputDirectory(out)
    let names = DataSource.fileNames
    try train.write(imagesPath: "\(out)/\(names.trainImages).gz", labelsPath: "\(out)/\(names.trainLabels).gz")
    try test.write(imagesPath: "\(out)/\(names.testImages).gz", labelsPath: "\(out)/\(names.testLabels).gz")
    if a.flag("json") {
        var o = JSONObject()
        o.set("out", out)
        o.set("shape", raw: "[" + train.shape.map(String.init).joined(separator: ",") + "]")
        o.set("train_count", train.count)
        o.set("test_count", test.count)
        print(o.text)
    } else {
        print("\(out): \(train.count) training and \(test.count) test images of \(shapeText(train.shape)) "
            + "(from \(source), tint seed \(seed))")
    }
}
