import Foundation
import MoatTestSupport
import Testing

/// `moat contact` through the real binary, in its own process and through the running server.
@Suite(.serialized) struct ContactCommandTests {
    @Test("contact add, list and remove: webhook addresses, ceilings, one grant per sender, clear usage errors")
    func offline() async throws {
        let home = try await ServedHome.copy()
        let added = try await MoatBinary.run(
            ["contact", "add", "webhook:sms:+15551234567", "--ceiling", "web=2", "--ceiling", "shell=0"],
            home: home.path)
        #expect(added.status == 0, "\(added.stderr)")
        #expect(added.stdout.hasPrefix("added contact "))
        #expect(added.stdout.contains(" webhook:sms:+15551234567 "))
        #expect(
            added.stdout.contains("messaging=2") && added.stdout.contains("web=2") && added.stdout.contains("shell=0"))
        #expect(added.stdout.contains("files=1"))
        let id = try #require(added.stdout.split(separator: " ").dropFirst(2).first).description
        // The same sender again is refused and changes nothing.
        let again = try await MoatBinary.run(["contact", "add", "webhook:sms:+15551234567"], home: home.path)
        #expect(again.status == 1 && again.stderr.contains("is a contact already"))
        let list = try await MoatBinary.run(["contact", "list"], home: home.path)
        #expect(
            list.stdout.split(separator: "\n").count == 1 && list.stdout.hasPrefix(id + " webhook:sms:+15551234567"))
        // Usage errors exit 64 and store nothing.
        for bad in [
            ["contact", "add", "nocolon"], ["contact", "add", "webhook:sms"],
            ["contact", "add", "telegram:1", "--ceiling", "web=9"],
            ["contact", "add", "telegram:1", "--ceiling", "cooking=1"],
        ] {
            let result = try await MoatBinary.run(bad, home: home.path)
            #expect(result.status == 64, "\(bad): \(result.stderr)")
        }
        #expect(
            try await MoatBinary.run(["contact", "list"], home: home.path).stdout.split(separator: "\n").count == 1)
        let removed = try await MoatBinary.run(["contact", "remove", id], home: home.path)
        #expect(removed.status == 0 && removed.stdout == "removed contact \(id)\n")
        let missing = try await MoatBinary.run(["contact", "remove", id], home: home.path)
        #expect(missing.status == 1 && missing.stderr.contains("no contact"))
        #expect(try await MoatBinary.run(["contact", "list"], home: home.path).stdout == "no contacts\n")
        let audit = try await MoatBinary.run(["audit", "tail", "-n", "20"], home: home.path)
        #expect(audit.stdout.contains("contact.add") && audit.stdout.contains("contact.remove"))
        // A mistyped id recorded nothing.
        #expect(audit.stdout.components(separatedBy: "contact.remove").count - 1 == 1)
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
    }

    @Test("with moat serve running, contact commands go through the admin socket")
    func throughAdminSocket() async throws {
        let home = try await ServedHome.copy()
        let server = try await RunningServer.start(arguments: [], home: home.path)
        await waitForFile(home.file("moat.sock"), within: 60)
        let added = try await MoatBinary.run(["contact", "add", "telegram:123456789"], home: home.path)
        #expect(added.status == 0, "\(added.stderr)")
        let list = try await MoatBinary.run(["contact", "list"], home: home.path)
        #expect(list.stdout.contains(" telegram:123456789 "))
        let (status, log) = await server.stop()
        #expect(status == 0)
        for op in ["contact.add", "contact.list"] {
            #expect(log.contains("\"op\":\"\(op)\""), "\(op) did not go through the admin socket")
        }
    }
}
