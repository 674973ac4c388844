// invoke allocates nothing: counted by the malloc interposer in CAllocCounter.

import CAllocCounter
import SprigCompile
import SprigRuntime
import XCTest

final class AllocationTests: XCTestCase {
    func testCounterSeesAnAllocation() {
        // The counter must be able to fail: an Array allocation is counted.
        sprig_alloc_counter_start()
        let a = [Int](repeating: 7, count: Int.random(in: 100...200))
        let n = sprig_alloc_counter_stop()
        XCTAssertGreaterThan(a.count, 0)
        XCTAssertGreaterThanOrEqual(n, 1)
    }

    func testInvokesAllocateNothing() throws {
        // Every op 1,000 times (the all-ops network), and the reference CNN 50 times (debug builds are slow).
        for (builder, invokes) in [(allOpsNetwork(), 1000), (referenceCNN(), 50)] {
            let blob = try builder.build()
            let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: blob.count, alignment: 16)
            defer { bytes.deallocate() }
            bytes.copyBytes(from: blob)
            let model = try Model(bytes: UnsafeRawBufferPointer(bytes))
            let arena = UnsafeMutableRawBufferPointer.allocate(byteCount: model.arenaBytes, alignment: 16)
            defer { arena.deallocate() }
            let interpreter = try Interpreter(model: model, arena: arena)
            let pixels = UnsafeMutableRawBufferPointer.allocate(byteCount: interpreter.inputInfo.elementCount, alignment: 16)
            defer { pixels.deallocate() }
            for i in 0..<pixels.count { pixels[i] = UInt8(truncatingIfNeeded: i &* 31) }
            try interpreter.setInput(pixels: UnsafeRawBufferPointer(pixels))
            interpreter.invoke()

            sprig_alloc_counter_start()
            var checksum = 0
            for _ in 0..<invokes {
                try interpreter.setInput(pixels: UnsafeRawBufferPointer(pixels))
                interpreter.invoke()
                checksum &+= interpreter.argmax()
            }
            let allocations = sprig_alloc_counter_stop()
            XCTAssertEqual(allocations, 0, "invoke allocated \(allocations) times")
            XCTAssertGreaterThanOrEqual(checksum, 0)
        }
    }
}
