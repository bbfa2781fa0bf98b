import MoatHTTP
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
