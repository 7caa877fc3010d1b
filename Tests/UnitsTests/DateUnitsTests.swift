import Foundation
import Testing
import Units

@Suite("Date units")
struct DateUnitsTests {
    @Test("Unix milliseconds round toward zero")
    func unixMilliseconds() {
        #expect(Date(timeIntervalSince1970: 1_717_171_717.1239).unixMilliseconds == 1_717_171_717_123)
        #expect(Date(timeIntervalSince1970: 0.0009).unixMilliseconds == 0)
        #expect(Date(timeIntervalSince1970: 0).unixMilliseconds == 0)
    }
}
