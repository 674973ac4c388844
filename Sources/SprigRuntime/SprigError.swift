/// Every way the runtime can refuse a blob, an arena or an input.
///
/// Cases carry the place (a field, a section, a tensor or op index) and the
/// expected and actual values, so that a command-line tool can turn them into
/// one sentence. The runtime never traps on input: it throws one of these.
public enum SprigError: Error, Equatable {
    case placeholder
}
