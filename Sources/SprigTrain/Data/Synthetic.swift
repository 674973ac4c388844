// Synthetic RGB data made from a gray set, for tests and demos of the 3-channel path.
//
//   gray   [UInt8]  N·H·W        sample i, row y, col x at (i·H + y)·W + x
//   tinted [UInt8]  N·S·S·3      S = side; pixel (y, x) of the gray image lands at
//                                (top + y, left + x), top = ⌊(S − H)/2⌋, left = ⌊(S − W)/2⌋,
//                                and channel c holds round(v · t[i][c]); the border is 0
//   tint   t[i][c] = 0.4 + 0.6·u, u uniform in [0, 1) from DataRNG(seed), drawn per image in
//          the order t[0][0], t[0][1], t[0][2], t[1][0], ...
//
// The tint is drawn independently of the label, so colour carries no class information:
// a network must learn the same shapes as on the gray set, through 3 input channels.

extension Dataset {
    /// The smallest tint of `paddedAndTinted(side:seed:)`: a channel keeps 40 % to 100 %
    /// of the gray value.
    static let minimumTint = 0.4

    /// This gray set centred on a `side × side` black canvas and turned into RGB with a
    /// random tint per image.
    ///
    /// Each image's three channels are its gray values scaled by three factors drawn from
    /// `seed`, uniform in `[0.4, 1)`, and rounded to nearest (ties away from zero). The
    /// factors do not depend on the label, so colour tells nothing about the class. Labels
    /// and order are kept. The same seed always gives the same bytes.
    ///
    /// ```swift
    /// let gray = try DataSource.builtin.load().train           // 28×28×1
    /// let rgb = try gray.paddedAndTinted(side: 32, seed: 7)    // 32×32×3
    /// rgb.shape  // [32, 32, 3]; pixel (y, x) of the 28×28 image is at (y + 2, x + 2)
    /// ```
    ///
    /// - Parameters:
    ///   - side: the height and width of the result, at least `max(rows, cols)`. When the
    ///     margin is odd, the extra row or column of padding is at the bottom or right.
    ///   - seed: the seed of the tints.
    /// - Throws: `DataError.invalidArgument` if the set is not gray (`channels != 1`), `side`
    ///   is smaller than `max(rows, cols)`, or the result would not fit in memory sizes.
    /// - Complexity: O(N·side²).
    public func paddedAndTinted(side: Int, seed: UInt64) throws -> Dataset {
        guard channels == 1 else {
            throw DataError.invalidArgument(name: "channels of the data to tint", value: "\(channels)",
                                            expected: "1 (a gray data set)")
        }
        guard side >= max(rows, cols) else {
            throw DataError.invalidArgument(name: "side", value: "\(side)",
                                            expected: "at least \(max(rows, cols)), the images are \(rows)×\(cols)")
        }
        let (area, o1) = side.multipliedReportingOverflow(by: side)
        let (perImage, o2) = area.multipliedReportingOverflow(by: 3)
        let (total, o3) = perImage.multipliedReportingOverflow(by: count)
        guard !o1, !o2, !o3 else {
            throw DataError.invalidArgument(name: "side", value: "\(side)",
                                            expected: "a size whose \(count) × side² × 3 bytes fit in Int")
        }
        let (top, left) = ((side - rows) / 2, (side - cols) / 2)
        var rng = DataRNG(seed: seed)
        var out = [UInt8](repeating: 0, count: total)
        for i in 0..<count {
            // 1. The tint of image i.
            let t0 = Dataset.minimumTint + (1 - Dataset.minimumTint) * rng.nextUnitDouble()
            let t1 = Dataset.minimumTint + (1 - Dataset.minimumTint) * rng.nextUnitDouble()
            let t2 = Dataset.minimumTint + (1 - Dataset.minimumTint) * rng.nextUnitDouble()
            // 2. Copy each gray pixel into the centre, once per channel.
            let source = i * rows * cols, target = i * perImage
            for y in 0..<rows {
                for x in 0..<cols {
                    let v = Double(images[source + y * cols + x])
                    let p = target + ((top + y) * side + left + x) * 3
                    out[p] = UInt8((v * t0).rounded())
                    out[p + 1] = UInt8((v * t1).rounded())
                    out[p + 2] = UInt8((v * t2).rounded())
                }
            }
        }
        return try Dataset(images: out, labels: labels, rows: side, cols: side, channels: 3)
    }
}
