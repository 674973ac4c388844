// `sprig make-rgb`: a 3-channel data set from a gray one, for trying the RGB path
// (and for the tests): each image centred on a larger black canvas and tinted with
// a random colour per image (SprigTrain/Data/Synthetic.swift). Writes the four IDX
// files that `--data DIR` reads, or with --images an image folder of PNG and JPEG files
// (one folder per class, named after the class) for trying and testing the image path.

import Foundation
import SprigTrain

let makeRGBCommand = Command(
    name: "make-rgb",
    summary: "Write a padded, tinted RGB copy of a gray data set (e.g. Fashion-MNIST as 32×32×3) as IDX files or PNG/JPEG folders.",
    usage: "sprig make-rgb [--data SOURCE] [--side 32] [--seed 1] [--per-class N] [--images [--classes SPEC]] --out DIR",
    positionals: 0...0,
    options: [
        OptionSpec(name: "data", value: "SOURCE", help: "The gray set: builtin, fashion-mnist or a directory of IDX files.", defaultValue: "builtin"),
        OptionSpec(name: "side", value: "S", help: "Height and width of the result (at least the images').", defaultValue: "32"),
        OptionSpec(name: "seed", value: "S", help: "Seed of the tints.", defaultValue: "1"),
        OptionSpec(name: "per-class", value: "N", help: "Keep the first N training and N/5 test images of each class (0: all).", defaultValue: "0"),
        OptionSpec(name: "images", value: nil, help: "Write an image folder instead: DIR/CLASS-NAME/NNNNN.png|jpg, PNG and JPEG (quality 95) alternating, train and test images together."),
        OptionSpec(name: "classes", value: "SPEC", help: "With --images: the classes to write.", defaultValue: "all"),
        OptionSpec(name: "out", value: "DIR", help: "Directory for the four .gz IDX files, or the image folder (created)."),
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
    if a.flag("images") {
        let classes = try ClassSelection.parse(a.string("classes", default: "all"), present: train.labelsPresent)
        let names = splits.names(of: classes)
        var written = 0
        for (k, c) in classes.enumerated() {
            // A class name may hold "/" (Fashion-MNIST's "T-shirt/top"): not in a folder name.
            let folder = (out as NSString).appendingPathComponent(names[k].replacingOccurrences(of: "/", with: "-"))
            try Interrupt.createOutputDirectory(folder)
            var index = 0
            for data in [train, test] {
                for i in 0..<data.count where Int(data.labels[i]) == c {
                    let pixels = Array(data.image(i))
                    let png = index % 2 == 0
                    let bytes = png ? try ImageCodec.encodePNG(pixels, width: data.cols, height: data.rows, channels: data.channels)
                        : try ImageCodec.encodeJPEG(pixels, width: data.cols, height: data.rows, channels: data.channels, quality: 95)
                    try writeFileAtomically(bytes, to: (folder as NSString).appendingPathComponent(String(format: "%05d.%@", index, png ? "png" : "jpg")))
                    index += 1
                    written += 1
                }
            }
        }
        if a.flag("json") {
            var o = JSONObject()
            o.set("out", out)
            o.set("shape", raw: "[" + train.shape.map(String.init).joined(separator: ",") + "]")
            o.set("images", written)
            o.set("classes", raw: "[" + names.map(jsonQuote).joined(separator: ",") + "]")
            print(o.text)
        } else {
            print("\(out): \(written) PNG and JPEG images of \(shapeText(train.shape)) in \(classes.count) class folders "
                + "(from \(source), tint seed \(seed))")
        }
        return
    }
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
