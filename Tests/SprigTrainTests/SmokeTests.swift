import XCTest
@testable import SprigRuntime
final class SmokeTests: XCTestCase { func testPlaceholder() { XCTAssertEqual(SprigError.placeholder, .placeholder) } }
