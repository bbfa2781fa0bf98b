import Foundation
import MoatTestSupport
import Testing

extension ConsolePageTests {
    @Test(
        "the contacts page approves a pairing code with the chosen ceilings, refuses bad ceilings and forms without the token, denies and removes"
    )
    func contactsPage() async throws {
        let model = try await ScriptedModelServer.start(replies: [])
        defer { Task { await model.stop() } }
        let telegram = try await FakeTelegramServer.start()
        defer { Task { await telegram.stop() } }
        let prepared = try await TelegramServeTests.home(model: model, telegram: telegram, token: telegram.token)
        let (home, running, port) = try await Self.serve(home: prepared, password: "a long owner passphrase")
        let (cookie, csrf) = try await Self.login(port: port, password: "a long owner passphrase")
        let session = [("Cookie", cookie)]
        let browser = session + [("Origin", "http://127.0.0.1:\(port)")]
        func get(_ path: String) async throws -> RawHTTP.Response {
            try await OwnerCommandTests.send("GET", path, port: port, headers: session)
        }
        func post(_ path: String, _ fields: [(String, String)]) async throws -> RawHTTP.Response {
            let response = try await Self.form(path, port: port, fields: fields, headers: browser)
            #expect(response.status == 303, "\(path): \(response.status) \(response.body)")
            return try await get(try #require(response.header("Location")))
        }
        #expect(try await get("/contacts").body.contains(#"id="no-pairings""#))

        for stranger in [TelegramServeTests.alice, TelegramServeTests.mallory] {
            telegram.sendPrivateMessage(from: stranger, text: "hello?")
            try await TelegramServeTests.eventually { TelegramServeTests.texts(telegram, to: stranger).count == 1 }
        }
        let alice = try #require(TelegramServeTests.texts(telegram, to: TelegramServeTests.alice).first)
        let mallory = try #require(TelegramServeTests.texts(telegram, to: TelegramServeTests.mallory).first)
        let aliceCode = try #require(TelegramServeTests.code(in: alice))
        let malloryCode = try #require(TelegramServeTests.code(in: mallory))
        let page = try await get("/contacts")
        #expect(
            page.body.contains(#"id="pairing-\#(aliceCode)""#) && page.body.contains(#"id="pairing-\#(malloryCode)""#))
        #expect(page.body.contains("<code>222000222</code>"), "\(page.body)")
        // The defaults `moat pairing approve` uses are preselected: messaging 2, the others 1.
        #expect(
            page.body.contains(
                #"<select name="ceiling_web" id="ceiling-\#(aliceCode)-web"><option value="0">0 none</option><option value="1" selected>"#
            ))

        // A level out of range, an unknown domain, or no CSRF token: refused, the code still pending.
        let badLevel = try await post(
            "/contacts/pairing/approve", [("csrf_token", csrf), ("code", aliceCode), ("ceiling_web", "9")])
        #expect(badLevel.body.contains("The ceiling for web must be a level from 0 to 4; nothing was done."))
        let badDomain = try await post(
            "/contacts/pairing/approve", [("csrf_token", csrf), ("code", aliceCode), ("ceiling_banking", "2")])
        #expect(badDomain.body.contains("There is no trust domain ceiling_banking"))
        let noToken = try await Self.form(
            "/contacts/pairing/approve", port: port, fields: [("code", aliceCode)], headers: browser)
        #expect(noToken.status == 403)
        let wrongCode = try await post("/contacts/pairing/approve", [("csrf_token", csrf), ("code", "ABCD-EFGH")])
        #expect(wrongCode.body.contains("Nothing was done: "), "\(wrongCode.body)")
        #expect(try await MoatBinary.run(["contact", "list"], home: home.path).stdout == "no contacts\n")

        // Approved with web 2 and files 0: the contact has exactly those ceilings, as the CLI lists them.
        let approved = try await post(
            "/contacts/pairing/approve",
            [("csrf_token", csrf), ("code", aliceCode), ("ceiling_web", "2"), ("ceiling_files", "0")])
        #expect(approved.body.contains("Approved: telegram 222000222 is contact"), "\(approved.body)")
        let ceilings = "messaging 2, files 0, web 2, shell 1, finance 1, calendar 1, email 1, integrations 1, system 1"
        #expect(approved.body.contains(#"<td class="ceilings-list">\#(ceilings)</td>"#), "\(approved.body)")
        #expect(!approved.body.contains(#"id="pairing-\#(aliceCode)""#))
        let listed = try await MoatBinary.run(["contact", "list"], home: home.path)
        #expect(listed.stdout.contains("222000222") && listed.stdout.contains("web=2"), "\(listed.stdout)")
        #expect(listed.stdout.contains("files=0"))

        let denied = try await post("/contacts/pairing/deny", [("csrf_token", csrf), ("code", malloryCode)])
        #expect(denied.body.contains("Denied the pairing request of telegram 333000333."), "\(denied.body)")
        #expect(denied.body.contains(#"id="no-pairings""#) && !denied.body.contains(#"id="pairing-\#(malloryCode)""#))
        #expect(denied.body.contains("Denied: telegram <code>333000333</code> gets no new code until"))

        let idRange = try #require(denied.body.range(of: #"id="contact-[^"]+""#, options: .regularExpression))
        let contactID = String(denied.body[idRange].dropFirst(#"id="contact-"#.count).dropLast())
        let removed = try await post("/contacts/\(contactID)/remove", [("csrf_token", csrf)])
        #expect(removed.body.contains("Removed contact \(contactID)"), "\(removed.body)")
        #expect(removed.body.contains(#"id="no-contacts""#))
        #expect(try await MoatBinary.run(["contact", "list"], home: home.path).stdout == "no contacts\n")
        #expect(model.requests.isEmpty, "a stranger's message reached the model")

        let (status, log) = await running.stop()
        #expect(status == 0, "\(log)")
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
    }
}
