// End to end: a 2-layer MLP learns a planted, separable toy problem with plain SGD.
//
// Data: k = 4 classes in 10 dimensions. Class c is a Gaussian blob around a planted centre
// μ_c (unit normal entries scaled to norm 4), spread 0.5: the classes are separable with a
// wide margin, so a correct forward/backward/SGD loop must take the loss from about ln k to
// below 0.1. A wrong gradient sign or a missing accumulation stalls it well above.

import Foundation
import XCTest
@testable import SprigTrain
import SprigTestSupport

final class ToyTrainingTests: XCTestCase {
    func testMLPLearnsPlantedClusters() {
        let classes = 4, dimensions = 10, samples = 256
        var rng = SprigRNG(seed: 2024)

        // Planted centres and the data set.
        var centres: [[Float]] = []
        for _ in 0..<classes {
            let v = (0..<dimensions).map { _ in rng.normal() }
            let norm = v.map { $0 * $0 }.reduce(0, +).squareRoot()
            centres.append(v.map { 4 * $0 / norm })
        }
        var inputs: [Float] = []
        var labels: [Int] = []
        for i in 0..<samples {
            let c = i % classes
            labels.append(c)
            inputs += centres[c].map { $0 + 0.5 * rng.normal() }
        }
        let x = Tensor(shape: [samples, dimensions], storage: inputs)

        // Model: Dense(10→32) → ReLU → Dense(32→4). The last layer starts small so the first
        // loss is close to ln k.
        let hidden = Dense(inputDimensions: dimensions, outputDimensions: 32, rng: &rng)
        hidden.computesInputGradient = false
        let head = Dense(inputDimensions: 32, outputDimensions: classes, rng: &rng)
        head.weight.value.storage = head.weight.value.storage.map { $0 * 0.01 }
        let net = Sequential([hidden, ReLU(), head])
        let lossFn = SoftmaxCrossEntropy()

        // Plain SGD on minibatches of 64, in a fixed order.
        let learningRate: Float = 0.1, batch = 64
        var losses: [Float] = []
        for epoch in 0..<40 {
            for start in stride(from: 0, to: samples, by: batch) {
                let xb = Tensor(shape: [batch, dimensions], storage: Array(x.storage[(start * dimensions)..<((start + batch) * dimensions)]))
                let yb = Array(labels[start..<(start + batch)])
                net.zeroGrad()
                let loss = lossFn.forward(net.forward(xb, training: true), labels: yb)
                _ = net.backward(lossFn.backward())
                // SGD through the optimizer-facing view: θ ← θ − lr·∇θ.
                var store = ParameterList(net.parameters)
                for index in 0..<store.parameterCount {
                    store.withParameter(index) { values, gradients in
                        for i in values.indices { values[i] -= learningRate * gradients[i] }
                    }
                }
                if start == 0 { losses.append(loss) }
            }
            _ = epoch
        }
        let logits = net.forward(x, training: false)
        let finalLoss = lossFn.forward(logits, labels: labels)
        XCTAssertEqual(Double(losses[0]), log(Double(classes)), accuracy: 0.1, "first loss should be about ln k")
        XCTAssertLessThan(finalLoss, 0.1, "loss curve (first batch of each epoch): \(losses)")
        XCTAssertEqual(SoftmaxCrossEntropy.accuracy(logits, labels: labels), 1)
        XCTAssertTrue(zip(losses, losses.dropFirst()).filter { $1 > $0 }.count < losses.count / 4, "loss mostly decreases: \(losses)")
    }
}
