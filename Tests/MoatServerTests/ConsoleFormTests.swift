import Foundation
import MoatConsole
import MoatHTTP
import Synchronization
import Testing

/// The console's form bodies (`application/x-www-form-urlencoded`), read before any CSRF check.
@Suite struct ConsoleFormTests {
    @Test("fields decode + and percent escapes; the first of a repeated field wins")
    func decoding() {
        let fields = FormBody.fields("csrf_token=abc%2Bdef&reason=not+now%3A+%3Cb%3E&csrf_token=second&empty=&bare")
        #expect(fields["csrf_token"] == "abc+def")
        #expect(fields["reason"] == "not now: <b>")
        #expect(fields["empty"] == "" && fields["bare"] == "")
    }

    @Test(
        "a malformed escape makes the field absent, not a guess",
        arguments: ["csrf_token=%zz", "csrf_token=%4", "csrf_token=a%"])
    func malformed(body: String) {
        #expect(FormBody.fields(body)["csrf_token"] == nil)
    }

    @Test("an empty or junk body has no token")
    func junk() {
        #expect(FormBody.fields("").isEmpty)
        #expect(FormBody.fields("&&&=")["csrf_token"] == nil)
        #expect(FormBody.fields(#"{"csrf_token":"x"}"#)["csrf_token"] == nil)
    }
}

/// The overview's posture checks are not rerun on every page load.
@Suite struct ConsoleSourcesTests {
    final class Counter: Sendable {
        let runs = Mutex(0)
    }

    static func sources(lifetime: TimeInterval, counter: Counter) -> ConsoleSources {
        ConsoleSources(postureLifetime: lifetime) {
            counter.runs.withLock { $0 += 1 }
            return [ConsoleSources.Finding(check: "bind", status: "pass", message: "loopback", fix: nil)]
        }
    }

    @Test("one posture run serves the overview within its lifetime; a lifetime of 0 reruns every time")
    func postureCache() async throws {
        let counter = Counter()
        let cached = try #require(Self.sources(lifetime: 3600, counter: counter).posture)
        #expect(await cached().first?.check == "bind")
        #expect(await cached().count == 1)
        #expect(counter.runs.withLock { $0 } == 1)
        let fresh = Counter()
        let uncached = try #require(Self.sources(lifetime: 0, counter: fresh).posture)
        _ = await uncached()
        _ = await uncached()
        #expect(fresh.runs.withLock { $0 } == 2)
    }
}
