// `sprig-edge finetune`: few-shot fine-tuning on the device, in one arena of
// the blob's fine-tuning plan, then an atomic write of the tuned blob.

#if canImport(SprigRuntime)
import SprigRuntime
#endif

// Left out of an inference-only build (Commands.swift, SPRIG_INFERENCE_ONLY).
#if !SPRIG_INFERENCE_ONLY

let finetuneHelp = """
    sprig-edge finetune MODEL.sprig SHOTS.idx LABELS.idx --out TUNED.sprig
                        [--method imprint|head|bias|last|reinit] [--layers L] [--epochs N] [--seed S]
                        [--augment A] [--names A,B,C] [--json] [--max-macs N]
      Fine-tunes the classifier on a few labelled images and writes the tuned blob.
      SHOTS.idx: uncompressed IDX images of the model's input size; LABELS.idx: one byte
      per shot, 0 .. N-1 for the N new classes, each class with at least one shot.
      --method   imprint  class means, no training;
                 head     imprint, then Adam on the cached features (the default);
                 bias     imprint, then train every bias of the backbone and the
                          classifier, backpropagating through the backbone (TinyTL);
                 last     imprint, then train the weights and biases of the last L
                          layers and the classifier;
                 reinit   re-initialise every backbone layer (He-uniform from --seed,
                          biases 0), imprint on the random features, then train every
                          layer and the classifier (blobs compiled with
                          --precision f32 --finetune-methods ...,reinit).
                 bias, last and reinit train Float32 layers: an int8 backbone stays
                 integer-only.
                 bias needs a Float32 blob; last a Float32 blob or a mixed one whose
                 last L layers are Float32 (sprig compile --precision q8
                 --finetune-methods head,last:L). Use imprint or head on other q8 blobs.
      --layers   L for last: Dense/Conv2D/DepthwiseConv2D layers counted back from the
                 classifier (default 1; at most the plan's finetune_max_layers).
      --epochs   training epochs (default 30); --seed the batch order and reinit's
                 initial weights (default 0);
      --augment  shifted copies per shot: 0, 1 (±1 px) or 2 (±1, ±2 px); default: head 1,
                 the others 0, never above the level the blob's plan was sized for.
      --names    the new classes' names, comma-separated, one per class in label order
                 (label 0 first); their count must equal the classes in LABELS.idx. They
                 are stored in the tuned blob (its `labels`), and `sprig-edge run` prints
                 them. Without --names the tuned blob has no names (the old ones named other
                 classes). --classes is the older spelling of --names.
      --max-macs refuse a model whose one invoke needs more multiply-accumulates
                 (default 1000000000).
      The arena is the blob's fine-tuning plan (finetune_arena_bytes); more classes,
      shots, augmentation or layers than planned are refused before anything changes. The output is written
      to a temporary file, fsynced and renamed, so TUNED.sprig always holds either its
      old content or the complete new blob. Prints the time taken and the arena bytes;
      The optimizer is Adam when the plan holds it, else SGD (a blob compiled with
      --finetune-optimizer sgd).
      --json prints seconds, arena_bytes, blob_bytes, classes, shots (and method, optimizer,
      samples, loss_initial, loss_final).

    """

func finetune(_ a: Arguments, _ help: String) throws(EdgeError) -> Int32 {
    guard a.positional.count == 3 else { return usageFail("finetune takes MODEL.sprig SHOTS.idx LABELS.idx", help) }
    guard let out = a.out, !out.isEmpty else { return usageFail("finetune needs --out TUNED.sprig", help) }
    var method = FineTuneMethod.head
    if let name = a.method {
        var name = name
        guard let m = name.withUTF8({ FineTuneMethod(name: UnsafeRawBufferPointer($0)) }) else {
            return usageFail("--method: '\(name)' is not one of imprint, head, bias, last, reinit", help)
        }
        method = m
    }
    var nameCount = 0
    if let names = a.names {
        nameCount = 1
        var empty = names.isEmpty
        var last: UInt8 = UInt8(ascii: ",")
        for byte in names.utf8 {
            if byte == UInt8(ascii: ",") {
                nameCount += 1
                if last == byte { empty = true }
            }
            last = byte
        }
        if last == UInt8(ascii: ",") || empty { return usageFail("--names: '\(names)' has an empty class name", help) }
    }
    let modelPath = a.positional[0], shotsPath = a.positional[1], labelsPath = a.positional[2]

    // The model and its plan.
    let loaded = try LoadedModel(modelPath)
    defer { loaded.free() }
    try loaded.checkWork(a.maxMacs)
    let m = loaded.model
    guard let plan = FineTunePlan(model: m) else {
        throw EdgeError(message: "\(modelPath): finetune_arena_bytes: is 0, the blob has no fine-tuning plan (compile it with one)")
    }
    // The shots and labels.
    let shotFile = try readIDX(shotsPath)
    defer { shotFile.buffer.deallocate() }
    let labelFile = try readIDX(labelsPath)
    defer { labelFile.buffer.deallocate() }
    let shots = shotFile.view, labels = labelFile.view
    let need = m.tensor(m.input(0)?.tensor ?? 0).elementCount
    guard shots.count > 0 else {
        throw EdgeError(message: "\(shotsPath): dims[0]: is 0, fine-tuning needs at least one shot per class")
    }
    guard shots.dims.count >= 2, shots.itemBytes == need else {
        throw EdgeError(message: "\(shotsPath): dims: each image has \(shots.dims.count >= 2 ? shots.itemBytes : 1) pixels, the model's input needs \(need)")
    }
    guard labels.dims.count == 1 else {
        throw EdgeError(message: "\(labelsPath): ndim: is \(labels.dims.count), labels need 1")
    }
    guard labels.count == shots.count else {
        throw EdgeError(message: "\(labelsPath): dims[0]: \(labels.count) labels for \(shots.count) shots in \(shotsPath)")
    }
    // The classes are the labels 0 ... max; --names must name each of them.
    var classCount = 0
    var highest = 0
    for i in 0..<labels.count where Int(labels.data[i]) + 1 > classCount {
        classCount = Int(labels.data[i]) + 1
        highest = i
    }
    if nameCount > 0 && nameCount != classCount {
        throw EdgeError(message: "\(labelsPath): --names gives \(nameCount) names, but the labels have \(classCount) classes "
            + "(0 to \(classCount - 1): label[\(highest)] is \(classCount - 1)); give one name per class, label 0 first")
    }

    // One arena of the plan's size.
    guard let arena = allocateBuffer(plan.arenaBytes) else {
        throw EdgeError(message: "\(modelPath): finetune_arena_bytes: is \(plan.arenaBytes), more memory than this device can allocate")
    }
    defer { releaseBuffer(arena) }
    if a.layers != nil && method != .last { return usageFail("--layers applies to --method last only", help) }
    let t0 = now()
    var tuner: FineTuner
    var options = FineTuneOptions(method: method)
    do throws(SprigError) {
        tuner = try FineTuner(model: m, arena: UnsafeMutableRawBufferPointer(rebasing: arena[0..<plan.arenaBytes]))
        // Adam when the plan holds it, else SGD; the augmentation the plan allows.
        options = tuner.plannedOptions(method: method, layers: a.layers ?? 1, augmentation: a.augment)
        if let e = a.epochs { options.epochs = e }
        if let s = a.seed { options.seed = s }
        try tuner.fineTune(shots: shots.data, labels: labels.data, classCount: classCount, options: options)
    } catch {
        throw failure(error, model: modelPath, shots: shotsPath, labels: labelsPath)
    }
    let t1 = now()
    // Serialise into one buffer, then write it atomically.
    let names = a.names ?? ""
    let nameBytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(names.utf8.count, 1), alignment: 1)
    defer { nameBytes.deallocate() }
    var k = 0
    for byte in names.utf8 {
        nameBytes[k] = byte
        k += 1
    }
    let classNames: UnsafeRawBufferPointer? = a.names == nil ? nil : UnsafeRawBufferPointer(rebasing: nameBytes[0..<k])
    let size: Int
    do throws(SprigError) {
        size = try tuner.tunedBlobBytes(classNames: classNames)
    } catch {
        throw EdgeError(message: "\(out): \(error.message)")
    }
    guard let blob = allocateBuffer(size) else {
        throw EdgeError(message: "\(out): cannot allocate \(size) bytes for the tuned blob")
    }
    defer { releaseBuffer(blob) }
    let written: Int
    do throws(SprigError) {
        written = try tuner.writeTunedBlob(into: blob, classNames: classNames)
    } catch {
        throw EdgeError(message: "\(out): \(error.message)")
    }
    let t2 = now()
    do {
        try writeFileAtomically(out, UnsafeRawBufferPointer(rebasing: blob[0..<written]))
    } catch {
        throw EdgeError(message: "\(error.path): \(error.reason)")
    }
    let t3 = now()
    let seconds = t3 - t0
    if a.json {
        writeOut("{\"seconds\":\(number(seconds)),\"arena_bytes\":\(plan.arenaBytes),\"blob_bytes\":\(written)"
            + ",\"classes\":\(classCount),\"shots\":\(shots.count),\"method\":\(jsonString(method.name.description))"
            + ",\"optimizer\":\"\(options.optimizer == .sgd ? "sgd" : "adam")\""
            + ",\"samples\":\(tuner.sampleCount),\"loss_initial\":\(number(Double(tuner.loss.initial)))"
            + ",\"loss_final\":\(number(Double(tuner.loss.final)))"
            + ",\"seconds_tune\":\(number(t1 - t0)),\"seconds_write\":\(number(t3 - t2))}\n")
    } else {
        var s = "\(method.name.description): \(shots.count) shots, \(classCount) classes, \(tuner.sampleCount) samples"
        if method != .imprint {
            s += ", \(options.optimizer == .sgd ? "SGD" : "Adam")"
            s += ", loss \(fixed(Double(tuner.loss.initial), 4)) -> \(fixed(Double(tuner.loss.final), 4))"
        }
        s += "\n"
        s += "time:   \(fixed(seconds * 1e3, 2)) ms (fine-tune \(fixed((t1 - t0) * 1e3, 2)) ms, write \(fixed((t3 - t2) * 1e3, 2)) ms)\n"
        s += "arena:  \(plan.arenaBytes) bytes (plan for \(plan.maxClasses) classes x \(plan.maxShots) shots"
            + (plan.maxLayers.map { $0 > 0 ? ", last up to \($0) layers" : "" } ?? "") + ")\n"
        s += "wrote:  \(out) (\(written) bytes)\n"
        writeOut(s)
    }
    return 0
}

/// Names the file a fine-tuning error is about: shot problems the shots file,
/// label and plan-limit problems the labels file, the rest the model.
func failure(_ error: SprigError, model: String, shots: String, labels: String) -> EdgeError {
    guard case .fineTune(let problem) = error else { return EdgeError(message: "\(model): \(error.message)") }
    switch problem {
    case .noShots, .shotSizeMismatch:
        return EdgeError(message: "\(shots): \(problem.message)")
    case .labelCountMismatch, .labelOutOfRange, .classWithoutShots, .tooManyShots, .tooManyClasses:
        return EdgeError(message: "\(labels): \(problem.message)")
    default:
        return EdgeError(message: "\(model): \(problem.message)")
    }
}

#endif
