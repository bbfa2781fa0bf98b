import Foundation
import Hummingbird
import MoatAdmin
import MoatAuth
import MoatCore
import MoatHTTP
import MoatPolicy
import Synchronization

/// The console's contacts and pairing page (`/contacts`): the pending pairing requests with a form to
/// approve each with a ceiling per trust domain (or deny it), the owner-binding codes waiting to be sent,
/// and the contacts with their ceilings and a remove button. Every action runs the same typed
/// operation as `moat pairing approve|deny` and `moat contact rm` (``AdminOperations``).
enum ContactPages {
    static func register(on pages: RouterGroup<GatewayRequestContext>, operations: AdminOperations) {
        pages.get("/contacts") { request, context -> Response in
            let values = await show(request, context, operations: operations)
            return ConsoleRoutes.page(
                "contacts", "Contacts & pairing", ConsoleTemplates.render("contacts", values), path: "/contacts",
                context: context)
        }
        pages.post("/contacts/pairing/{decision}") { request, context -> Response in
            let decision = context.parameters.get("decision")
            guard decision == "approve" || decision == "deny" else { return Response(status: .notFound) }
            let form = try await ConsoleNotices.form(request)
            var code = Array((form["code"] ?? "").utf8)
            let operation: AdminOperation
            if decision == "approve" {
                do throws(ConsoleNotices.Invalid) {
                    operation = .pairingApprove(code: SecretBytes(wiping: &code), ceilings: try ceilings(form))
                } catch {
                    return ConsoleNotices.redirect("/contacts", error.message, ok: false)
                }
            } else {
                operation = .pairingDeny(code: SecretBytes(wiping: &code))
            }
            return await ConsoleNotices.run(operation, request, context, operations, back: "/contacts") { result in
                switch result {
                case .pairingApproved(let contact):
                    "Approved: \(contact.channel) \(contact.sender) is contact \(contact.id) with ceilings "
                        + describe(contact.ceilings) + "."
                case .pairingDenied(let pairing): "Denied the pairing request of \(pairing.channel) \(pairing.sender)."
                default: "Done."
                }
            }
        }
        pages.post("/contacts/{id}/remove") { request, context -> Response in
            let id = context.parameters.get("id") ?? ""
            guard ConsoleRoutes.isPlainID(id) else {
                return ConsoleNotices.redirect("/contacts", "That contact id is malformed.", ok: false)
            }
            return await ConsoleNotices.run(.contactRemove(id: id), request, context, operations, back: "/contacts") {
                _ in
                "Removed contact \(id): their next message gets a pairing code."
            }
        }
    }

    /// The ceilings a form chose (`ceiling_DOMAIN=LEVEL`), over the defaults `moat pairing approve`
    /// uses for a domain it does not name.
    static func ceilings(_ form: [String: String]) throws(ConsoleNotices.Invalid) -> [TrustDomain: TrustLevel] {
        var ceilings = PolicySettings.defaultContactCeilings
        for (name, value) in form where name.hasPrefix("ceiling_") {
            guard let domain = TrustDomain(rawValue: String(name.dropFirst("ceiling_".count))) else {
                throw .init("There is no trust domain \(PrintableText.excerpt(name, limit: 40)); nothing was done.")
            }
            guard let number = Int(value), let level = TrustLevel(rawValue: number) else {
                throw .init("The ceiling for \(domain) must be a level from 0 to 4; nothing was done.")
            }
            ceilings[domain] = level
        }
        return ceilings
    }

    /// `messaging 2, files 1, …` in the order of the domains.
    static func describe(_ ceilings: [String: Int]) -> String {
        TrustDomain.allCases.compactMap { domain in ceilings[domain.rawValue].map { "\(domain) \($0)" } }
            .joined(separator: ", ")
    }

    static func show(
        _ request: Request, _ context: GatewayRequestContext, operations: AdminOperations
    ) async -> [String: Any] {
        var reads = ConsoleReads(operations, request, context)
        var values: [String: Any] = [:]
        if let pending = await reads.read(
            .pairingList, "the pairing requests",
            { result in
                if case .pairings(let pending) = result { pending } else { nil }
            })
        {
            let defaults = PolicySettings.defaultContactCeilings
            values["pairings"] = pending.filter { $0.purpose == "pair" && $0.state == "pending" }.map {
                pairing -> [String: Any] in
                [
                    "channel": PrintableText.strip(pairing.channel), "sender": PrintableText.strip(pairing.sender),
                    "code": PrintableText.strip(pairing.code), "expires": ConsoleRoutes.time(pairing.expiresAt),
                    "domains": TrustDomain.allCases.map { domain -> [String: Any] in
                        let chosen = defaults[domain] ?? .none
                        return [
                            "domain": domain.rawValue,
                            "levels": TrustLevel.allCases.map { level -> [String: Any] in
                                [
                                    "value": level.rawValue, "name": "\(level.rawValue) \(level.name)",
                                    "selected": level == chosen,
                                ]
                            },
                        ]
                    },
                ]
            }
            values["denied"] = pending.filter { $0.purpose == "pair" && $0.state == "denied" }.map {
                [
                    "channel": PrintableText.strip($0.channel), "sender": PrintableText.strip($0.sender),
                    "expires": ConsoleRoutes.time($0.expiresAt),
                ]
            }
            values["bindings"] = pending.filter { $0.purpose == "bind" }.map { binding -> [String: Any] in
                [
                    "channel": PrintableText.strip(binding.channel), "code": PrintableText.strip(binding.code),
                    "expires": ConsoleRoutes.time(binding.expiresAt),
                ]
            }
        }
        if let contacts = await reads.read(
            .contactList, "the contacts",
            { result in
                if case .contacts(let contacts) = result { contacts } else { nil }
            })
        {
            values["contacts"] = contacts.map { contact -> [String: Any] in
                [
                    "id": PrintableText.strip(contact.id), "channel": PrintableText.strip(contact.channel),
                    "sender": PrintableText.strip(contact.sender), "ceilings": describe(contact.ceilings),
                    "added": ConsoleRoutes.time(contact.addedAt),
                ]
            }
            values["hasContacts"] = !contacts.isEmpty
        }
        values["notice"] = ConsoleNotices.take(request, problems: reads.problems)
        return values
    }
}

/// The reads of one page: each operation's answer, or (when it fails) a problem the page shows.
struct ConsoleReads {
    let operations: AdminOperations
    let client: ClientInfo
    private(set) var problems: [String] = []

    init(_ operations: AdminOperations, _ request: Request, _ context: GatewayRequestContext) {
        self.operations = operations
        self.client = OwnerAccessMiddleware.client(request, context)
    }

    /// What `operation` answered, taken apart by `extract`; nil (and a problem naming `what`) when it failed.
    mutating func read<T>(
        _ operation: AdminOperation, _ what: String, _ extract: (AdminResult) -> T?
    ) async -> T? {
        do throws(AdminFailure) {
            if let value = extract(try await operations.perform(operation, client: client)) { return value }
            problems.append("Could not read \(what): the operation answered something unexpected.")
        } catch {
            problems.append("Could not read \(what): " + error.message)
        }
        return nil
    }
}

/// What a console form did, shown on the page the browser is sent to next: kept here under a random
/// key (`?notice=KEY`), never in the URL itself (it may name a code or echo what was typed).
enum ConsoleNotices {
    struct Invalid: Error {
        let message: String
        init(_ message: String) { self.message = message }
    }

    private static let notices = Mutex<[String: (text: String, ok: Bool)]>([:])

    /// A 303 to `path` showing `text`.
    static func redirect(_ path: String, _ text: String, ok: Bool) -> Response {
        let key = (0..<12).map { _ in String("abcdefghijklmnopqrstuvwxyz0123456789".randomElement()!) }.joined()
        notices.withLock { values in
            if values.count > 100 { values.removeAll() }
            values[key] = (PrintableText.excerpt(text, limit: 400), ok)
        }
        return ConsolePageMiddleware.redirect(path + "?notice=" + key)
    }

    /// The notice a redirect left for this page (once), else what could not be read (`problems`), else nil.
    static func take(_ request: Request, problems: [String]) -> [String: Any]? {
        take(request) ?? (problems.isEmpty ? nil : ["text": problems.joined(separator: " "), "ok": false])
    }

    /// The notice a redirect left for this page (once).
    static func take(_ request: Request) -> [String: Any]? {
        guard let key = request.uri.queryParameters.get("notice"),
            let notice = notices.withLock({ $0.removeValue(forKey: key) })
        else { return nil }
        return ["text": notice.text, "ok": notice.ok]
    }

    /// The form's fields (the middleware already checked its CSRF token).
    static func form(_ request: Request) async throws -> [String: String] {
        var request = request
        return FormBody.fields(String(buffer: try await request.collectBody(upTo: ConsolePageMiddleware.formLimit)))
    }

    /// Runs `operation` and sends the browser back to `back` with what it did (`done`) or why it failed.
    static func run(
        _ operation: AdminOperation, _ request: Request, _ context: GatewayRequestContext,
        _ operations: AdminOperations, back: String, done: (AdminResult) -> String
    ) async -> Response {
        do throws(AdminFailure) {
            let result = try await operations.perform(operation, client: OwnerAccessMiddleware.client(request, context))
            return redirect(back, done(result), ok: true)
        } catch {
            return redirect(back, "Nothing was done: " + error.message, ok: false)
        }
    }
}
