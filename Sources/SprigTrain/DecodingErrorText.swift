// JSON decoding failures in the user's words. Foundation's DecodingError
// prints Swift types and coding keys ("keyNotFound(CodingKeys(stringValue:
// "mean"), …)"); a user needs the field's name and what was wrong with it.

import Foundation

/// One phrase for a decoding failure: "missing field 'mean'", "field
/// 'widths[2]' is not a whole number", "not valid JSON".
///
/// ```swift
/// describeDecodingError(error)   // "missing field 'mean'"
/// ```
public func describeDecodingError(_ error: any Error) -> String {
    guard let e = error as? DecodingError else { return "not valid JSON" }
    func path(_ context: DecodingError.Context, _ key: (any CodingKey)? = nil) -> String {
        var s = ""
        for k in context.codingPath + (key.map { [$0] } ?? []) {
            if let i = k.intValue { s += "[\(i)]" } else { s += (s.isEmpty ? "" : ".") + k.stringValue }
        }
        return s
    }
    switch e {
    case let .keyNotFound(key, context):
        return "missing field '\(path(context, key))'"
    case let .typeMismatch(type, context):
        return "field '\(path(context))' is not \(typeDescription(type))"
    case let .valueNotFound(type, context):
        return "field '\(path(context))' is null, expected \(typeDescription(type))"
    case let .dataCorrupted(context):
        guard !context.codingPath.isEmpty else { return "not valid JSON" }
        // The decoders of the network description say what is wrong; keep it.
        let detail = context.debugDescription
        return "field '\(path(context))' has an invalid value" + (detail.isEmpty ? "" : ": \(detail)")
    @unknown default:
        return "not valid JSON"
    }
}

private func typeDescription(_ type: Any.Type) -> String {
    switch type {
    case is Int.Type, is Int32.Type, is Int64.Type, is UInt64.Type: return "a whole number"
    case is Float.Type, is Double.Type: return "a number"
    case is String.Type: return "a string"
    case is Bool.Type: return "true or false"
    default:
        let name = String(describing: type)
        if name.hasPrefix("Array") { return "a list" }
        if name.hasPrefix("Dictionary") { return "an object" }
        return "of the expected kind"
    }
}
