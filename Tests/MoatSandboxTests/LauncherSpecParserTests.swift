import Foundation
import MoatSandbox
import MoatTestSupport
import Testing

/// The launcher's JSON spec parser runs outside the sandbox on model-influenced input. These tests feed the
/// real launcher the fuzz corpus's hostile specs and the inputs behind what the fuzzer and the review of
/// issue 14 found (Docs/Sandbox.md, "Fuzzing the spec parser").
@Suite struct LauncherSpecParserTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../sandbox/fuzz/corpus").standardized

    /// Runs the real launcher on `bytes` as the spec (`--spec FILE`); returns its exit status and result.
    static func launch(_ bytes: [UInt8]) async throws -> (status: Int32, result: [String: Any]) {
        let temp = TemporaryDirectory("moat-sandbox-spec")
        let file = temp.file("spec.json")
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        let (status, output) = try await Launcher.runDirectly(["--spec", file])
        let result = (try? JSONSerialization.jsonObject(with: Data(output.utf8))) as? [String: Any] ?? [:]
        return (status, result)
    }

    /// Expects a setup error (exit 125, nothing run) whose message contains `expected`.
    static func expectRefused(_ bytes: [UInt8], _ expected: String, _ name: String = "") async throws {
        let (status, result) = try await launch(bytes)
        let error = result["error"] as? String ?? ""
        #expect(status == 125, "\(name): \(result)")
        #expect(result["status"] as? String == "setup_error", "\(name): \(result)")
        #expect(error.contains(expected), "\(name): \(error)")
    }

    static func utf8(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test("every hostile seed of the fuzz corpus (bad-*) is refused by the real launcher with a setup error")
    func corpusRefusals() async throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.corpus.path).filter {
            $0.hasPrefix("bad-")
        }
        #expect(names.count >= 25)
        for name in names.sorted() {
            let bytes = try [UInt8](Data(contentsOf: Self.corpus.appendingPathComponent(name)))
            // Every refusal names a byte offset or a field, never the input.
            let (status, result) = try await Self.launch(bytes)
            let error = result["error"] as? String ?? ""
            #expect(status == 125, "\(name): \(result)")
            #expect(error.hasPrefix("invalid JSON at byte ") || error.hasPrefix("spec"), "\(name): \(error)")
        }
    }

    @Test("nesting deeper than 32, duplicate keys, NUL bytes, lone surrogates and truncation are each named")
    func namedRefusals() async throws {
        let deep = String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
        let cases: [(String, String)] = [
            (#"{"argv":["a"],"limits":\#(deep)}"#, "nested more than 32 deep"),
            (#"{"argv":["a"],"\u0061rgv":["b"]}"#, "duplicate key in object"),
            (#"{"argv":["a\u0000b"]}"#, "spec.argv must hold only strings without NUL bytes"),
            (#"{"argv":["a"],"env":{"A\u0000":"x"}}"#, "contains '=' or a NUL byte"),
            (#"{"argv":["\ud800"]}"#, "high surrogate escape without a low surrogate"),
            (#"{"argv":["\udc00"]}"#, "lone low surrogate escape"),
            (#"{"argv":["/bin/tr"#, "unterminated string"),
            (#"{"argv":["a"],"timeout_ms":18446744073709551616}"#, "spec.timeout_ms must be an integer"),
        ]
        for (spec, expected) in cases { try await Self.expectRefused(Self.utf8(spec), expected, spec) }
    }

    @Test("a spec with more values than any valid spec has is refused (8 MiB of \"\" used to cost 900 MB)")
    func valueCap() async throws {
        let spec =
            #"{"argv":["#
            + Array(repeating: #""""#, count: 20_000).joined(separator: ",") + "]}"
        try await Self.expectRefused(Self.utf8(spec), "more than 16384 values")
    }

    @Test("an object with more than 4096 members is refused (800,000 distinct keys used to take hours)")
    func memberCap() async throws {
        let members = (0..<100_000).map { #""k\#($0)":"""# }.joined(separator: ",")
        try await Self.expectRefused(Self.utf8(#"{"argv":["a"],"env":{\#(members)}}"#), "more than 4096 members")
    }

    @Test("a spec larger than 8 MiB is refused before it is parsed")
    func sizeCap() async throws {
        let spec = Self.utf8(#"{"argv":["a"]}"#) + [UInt8](repeating: 0x20, count: 8 << 20)
        try await Self.expectRefused(spec, "the spec is larger than 8388608 bytes")
    }

    @Test("empty strings reach the command empty (the fuzzer found them unterminated in the launcher)")
    func emptyStrings() async throws {
        let long = String(repeating: "x", count: 600)
        let spec = SandboxSpec(
            ["/bin/sh", "-c", #"printf '<%s|%s|%s>' "$1" "$2" "$EMPTY""#, "sh", long, ""],
            environment: ["PATH": "/usr/bin:/bin", "EMPTY": ""]
        )
        let result = try await Launcher.sandbox().run(spec)
        #expect(result.exitCode == 0, "\(result.standardError)")
        #expect(result.standardOutput == "<\(long)||>")
    }
}

/// The installed launcher carries no attack code: the escape probes are the test-only `moat-sandbox-probe`.
@Suite struct LauncherContentsTests {
    @Test("the launcher has no probe mode: --probe is a setup error that names the test-only probe")
    func probeModeRefused() async throws {
        let (status, result) = try await Launcher.runDirectly(["--probe", "mount"])
        #expect(status == 125, "\(result)")
        #expect(result.contains(#""status":"setup_error""#), "\(result)")
        #expect(result.contains("--probe is not part of the launcher"), "\(result)")
        #expect(result.contains("moat-sandbox-probe"), "\(result)")
    }

    @Test("the launcher binary holds none of the probes' text; the probe binary does")
    func probeCodeAbsent() throws {
        let markers = ["ESCAPED", "probes: %d held", "fork-bomb", "sysv-shm-fill", "runs only inside a sandbox"]
        let launcher = try Data(contentsOf: URL(fileURLWithPath: Sandbox.defaultLauncherPath()))
        let probe = try Data(contentsOf: URL(fileURLWithPath: Launcher.probeHostPath))
        for marker in markers {
            #expect(launcher.range(of: Data(marker.utf8)) == nil, "the launcher contains \(marker)")
            #expect(probe.range(of: Data(marker.utf8)) != nil, "the probe lacks \(marker)")
        }
    }
}
