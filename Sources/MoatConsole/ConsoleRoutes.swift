public import Foundation
import HTTPTypes
public import Hummingbird
public import MoatAdmin
import MoatAgent
public import MoatAudit
import MoatAuth
import MoatCore
public import MoatHTTP
import NIOCore
import Synchronization

/// What the console shows that the gateway's composition root knows: when it started and the posture
/// checks of `moat doctor` (``PostureCheck`` lives above this layer, so it comes in as a closure).
public struct ConsoleSources: Sendable {
    /// One posture finding, as `moat doctor` prints it.
    public struct Finding: Sendable {
        public let check: String
        /// `pass`, `warn` or `fail`.
        public let status: String
        public let message: String
        public let fix: String?

        public init(check: String, status: String, message: String, fix: String?) {
            (self.check, self.status, self.message, self.fix) = (check, status, message, fix)
        }
    }

    public let started: Date
    public let posture: (@Sendable () async -> [Finding])?
    /// The gateway's audit log, for the audit page (nil: no page).
    public let audit: AuditLog?

    /// - Parameter postureLifetime: `moat doctor`'s checks read the whole database (integrity check) and
    ///   the state directory, so one run serves the overview for this many seconds.
    public init(
        started: Date = Date(), postureLifetime: TimeInterval = 60, posture: (@Sendable () async -> [Finding])? = nil,
        audit: AuditLog? = nil
    ) {
        self.started = started
        self.audit = audit
        self.posture = posture.map { run in
            let cache = PostureCache(lifetime: postureLifetime, run: run)
            return { await cache.findings() }
        }
    }
}

/// The last posture run and when it was made.
actor PostureCache {
    let lifetime: TimeInterval
    let run: @Sendable () async -> [ConsoleSources.Finding]
    var last: (time: Date, findings: [ConsoleSources.Finding])?

    init(lifetime: TimeInterval, run: @escaping @Sendable () async -> [ConsoleSources.Finding]) {
        self.lifetime = lifetime
        self.run = run
    }

    func findings() async -> [ConsoleSources.Finding] {
        if let last, Date().timeIntervalSince(last.time) < lifetime { return last.findings }
        let findings = await run()
        last = (Date(), findings)
        return findings
    }
}

/// The owner's server-rendered console pages: the overview (`/`) and approvals (`/approvals`), each
/// behind ``ConsolePageMiddleware``. Approving or denying runs the same typed operation as
/// `moat approvals approve` and `POST /api/approvals/{id}/approve` (``AdminOperations``), so the
/// held call that runs is exactly the one shown.
enum ConsoleRoutes {
    static let navigation: [(path: String, label: String)] = [
        ("/", "Overview"), ("/approvals", "Approvals"), ("/conversations", "Conversations"), ("/chat", "Chat"),
        ("/contacts", "Contacts"), ("/trust", "Trust"), ("/audit", "Audit"), ("/vault", "Vault"),
        ("/settings", "Tokens & login"),
    ]

    static func register(
        on router: Router<GatewayRequestContext>, auth: GatewayAuth, agent: Agent?, operations: AdminOperations?,
        sources: ConsoleSources
    ) {
        let pages = router.group().add(middleware: ConsolePageMiddleware(auth))
        if let agent { ConversationPages.register(on: pages, agent: agent, operations: operations) }
        pages.get("/") { request, context -> Response in
            let body = ConsoleTemplates.render(
                "overview", await overview(request, context, auth: auth, operations: operations, sources: sources))
            return page("overview", "Overview", body, path: "/", context: context)
        }
        pages.get("/settings") { _, context -> Response in
            page("settings", "Tokens & login", DashboardPages.settings, path: "/settings", context: context)
        }
        guard let operations else { return }
        ContactPages.register(on: pages, operations: operations)
        TrustPages.register(on: pages, operations: operations)
        VaultPages.register(on: pages, operations: operations, audit: sources.audit)
        if let audit = sources.audit { AuditPages.register(on: pages, audit: audit) }
        pages.get("/approvals") { request, context -> Response in
            let values = await approvals(request, context, operations: operations)
            return page(
                "approvals", "Approvals", ConsoleTemplates.render("approvals", values), path: "/approvals",
                context: context)
        }
        pages.post("/approvals/{id}/{decision}") { request, context -> Response in
            let id = context.parameters.get("id") ?? ""
            let approve: Bool
            switch context.parameters.get("decision") {
            case "approve": approve = true
            case "deny": approve = false
            default: return Response(status: .notFound)
            }
            guard isPlainID(id) else {
                return ConsolePageMiddleware.redirect("/approvals?result=malformed")
            }
            var request = request
            let form = FormBody.fields(
                String(buffer: try await request.collectBody(upTo: ConsolePageMiddleware.formLimit)))
            let reason = PrintableText.excerpt(form["reason"] ?? "", limit: 200)
            let operation: AdminOperation = approve ? .approvalsApprove(id: id) : .approvalsDeny(id: id, reason: reason)
            let outcome: String
            do throws(AdminFailure) {
                _ = try await operations.perform(operation, client: OwnerAccessMiddleware.client(request, context))
                outcome = approve ? "approved" : "denied"
            } catch {
                outcome = "failed"
                ConsoleOutcomes.remember(id: id, message: error.message)
            }
            let query =
                "result=\(outcome)&id=" + (id.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
            return ConsolePageMiddleware.redirect("/approvals?" + query)
        }
    }

    /// Whether `id` (from a path) is 1–64 printable ASCII characters without `/`: what every id the
    /// console links to looks like.
    static func isPlainID(_ id: String) -> Bool {
        (1...64).contains(id.utf8.count) && id.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f && $0 != 0x2f }
    }

    /// A page in the layout, naming who is logged in: the owner's username, or the Tailscale login.
    static func page(
        _ name: String, _ title: String, _ body: String, path: String, context: GatewayRequestContext,
        status: HTTPResponse.Status = .ok
    ) -> Response {
        var owner = "owner"
        if case .tailscale(let login, _) = context.identity {
            owner = PrintableText.strip(login) + " (Tailscale)"
        } else if case .ready(let username, _)? = context.ownerState {
            owner = PrintableText.strip(username)
        }
        let nav = navigation.map { ["path": $0.path, "label": $0.label, "current": $0.path == path] as [String: Any] }
        var response = html(layout(name, title, body, owner: owner, nav: nav))
        response.status = status
        return response
    }

    /// The layout around `body`; `owner` nil for the pages before login (no navigation).
    static func layout(_ name: String, _ title: String, _ body: String, owner: String?, nav: [[String: Any]] = [])
        -> String
    {
        var values: [String: Any] = [
            "page": name, "title": title, "body": body, "nav": nav,
            "stylePath": ConsoleAssets.style.path, "scriptPath": ConsoleAssets.script.path,
        ]
        if let owner { values["owner"] = owner }
        return ConsoleTemplates.render("layout", values)
    }

    static func html(_ text: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    // MARK: Overview

    static func overview(
        _ request: Request, _ context: GatewayRequestContext, auth: GatewayAuth, operations: AdminOperations?,
        sources: ConsoleSources
    ) async -> [String: Any] {
        var values: [String: Any] = ["uptime": uptime(Date().timeIntervalSince(sources.started))]
        if let posture = sources.posture {
            values["posture"] = await posture().map { finding -> [String: Any] in
                var row: [String: Any] = [
                    "check": PrintableText.strip(finding.check), "status": finding.status,
                    "statusLabel": finding.status == "pass" ? "OK" : finding.status == "warn" ? "Warning" : "Failing",
                    "message": PrintableText.strip(finding.message),
                ]
                if let fix = finding.fix { row["fix"] = PrintableText.strip(fix) }
                return row
            }
        }
        var pending = "—"
        if let operations,
            case .approvals(let records, _) = try? await operations.perform(
                .approvalsList(all: false), client: OwnerAccessMiddleware.client(request, context))
        {
            pending = String(records.count)
        }
        values["pending"] = pending
        var pairings = "—"
        if let operations,
            case .pairings(let requests) = try? await operations.perform(
                .pairingList, client: OwnerAccessMiddleware.client(request, context))
        {
            pairings = String(requests.filter { $0.purpose == "pair" && $0.state == "pending" }.count)
        }
        values["pairings"] = pairings
        if let activity = try? await AuditActivity.read(auth.database) {
            values["messagesToday"] = activity.messagesToday
            values["toolCallsToday"] = activity.toolCallsToday
            values["chart"] = chart(activity.hours)
            if let verify = activity.lastVerify {
                values["verify"] = [
                    "time": verify.time, "outcome": verify.outcome,
                    "status": verify.outcome == "intact" ? "pass" : "fail",
                ]
            }
        } else {
            values["messagesToday"] = "—"
            values["toolCallsToday"] = "—"
            values["chart"] = chart([])
        }
        return values
    }

    /// `seconds` as `3 d 4 h`, `2 h 5 min` or `40 s`.
    static func uptime(_ seconds: TimeInterval) -> String {
        let total = max(0, Int(seconds))
        let (days, hours, minutes) = (total / 86_400, total % 86_400 / 3600, total % 3600 / 60)
        if days > 0 { return "\(days) d \(hours) h" }
        if hours > 0 { return "\(hours) h \(minutes) min" }
        if minutes > 0 { return "\(minutes) min" }
        return "\(total) s"
    }

    /// The activity chart's geometry: per hour a messages bar and a tool-calls bar side by side.
    static func chart(_ hours: [AuditActivity.Hour]) -> [String: Any] {
        let (slot, width, plot, base) = (20, 480, 100, 110)
        let highest = max(1, hours.map { max($0.messages, $0.toolCalls) }.max() ?? 0)
        func height(_ count: Int) -> Int { count == 0 ? 0 : max(2, count * plot / highest) }
        var bars: [[String: Any]] = []
        var ticks: [[String: Any]] = []
        for (index, hour) in hours.enumerated() {
            let x = index * slot
            let (messages, tools) = (height(hour.messages), height(hour.toolCalls))
            let label = "\(hour.hour.suffix(2)):00 UTC: \(hour.messages) messages, \(hour.toolCalls) tool calls"
            bars.append([
                "mx": x + 2, "my": base - messages, "mh": messages, "tx": x + 10, "ty": base - tools, "th": tools,
                "w": 8, "label": label,
            ])
            if index % 4 == 0 { ticks.append(["x": x, "y": base + 12, "label": String(hour.hour.suffix(2)) + "h"]) }
        }
        let messages = hours.reduce(0) { $0 + $1.messages }
        let tools = hours.reduce(0) { $0 + $1.toolCalls }
        return [
            "width": width, "height": base + 16, "base": base, "bars": bars, "ticks": ticks, "max": highest,
            "summary": "Activity per hour over the last 24 hours: \(messages) messages and \(tools) tool calls",
        ]
    }

    // MARK: Approvals

    static func approvals(
        _ request: Request, _ context: GatewayRequestContext, operations: AdminOperations
    ) async -> [String: Any] {
        let client = OwnerAccessMiddleware.client(request, context)
        var values: [String: Any] = [:]
        var notice: [String: Any]?
        do throws(AdminFailure) {
            guard case .approvals(let all, _) = try await operations.perform(.approvalsList(all: true), client: client)
            else { throw AdminFailure("the operation answered something unexpected") }
            var pending: [[String: Any]] = []
            for record in all where record.status == "pending" {
                var shown = record
                if case .approval(let detailed) = try? await operations.perform(
                    .approvalsShow(id: record.id), client: client)
                {
                    shown = detailed
                }
                pending.append(row(shown))
            }
            values["pending"] = pending
            values["pendingCount"] = pending.count
            let history = all.filter { $0.status != "pending" }.suffix(50).reversed().map(row)
            values["history"] = history
            values["hasHistory"] = !history.isEmpty
        } catch {
            notice = ["text": "Could not read the approvals: " + error.message, "ok": false]
            values["pendingCount"] = 0
        }
        let query = request.uri.queryParameters
        if let result = query.get("result") {
            let id = PrintableText.excerpt(query.get("id") ?? "", limit: 64)
            switch result {
            case "approved": notice = ["text": "Approved \(id): the call ran.", "ok": true]
            case "denied": notice = ["text": "Denied \(id).", "ok": true]
            case "failed":
                notice = ["text": "Nothing was done with \(id): " + ConsoleOutcomes.take(id: id), "ok": false]
            default: notice = ["text": "That approval id is malformed.", "ok": false]
            }
        }
        if let notice { values["notice"] = notice }
        return values
    }

    /// One approval as the templates show it; the arguments are shortened with the whole kept behind
    /// a disclosure (works without JavaScript).
    static func row(_ view: ApprovalView) -> [String: Any] {
        let arguments = PrintableText.stripKeepingLines(view.arguments)
        let short = PrintableText.excerpt(view.arguments, limit: 120)
        var row: [String: Any] = [
            "id": PrintableText.strip(view.id), "status": PrintableText.strip(view.status),
            "domain": view.domain.rawValue, "tool": PrintableText.strip(view.tool),
            "principal": PrintableText.strip(view.principal), "destination": PrintableText.strip(view.destination),
            "arguments": arguments, "short": short, "long": arguments.count > 120,
            "created": time(view.createdAt), "expires": time(view.expiresAt),
        ]
        // `moat approvals show`'s "held:" text; a call the agent does not hold now has none.
        if let why = view.heldBecause { row["why"] = PrintableText.strip(why) }
        return row
    }

    /// An approval's time (milliseconds since 1970) as the audit log writes times.
    static func time(_ millis: Int64) -> String {
        AuditLog.timestamp(Date(timeIntervalSince1970: Double(millis) / 1000))
    }
}

/// Why the last decision on an approval failed, kept for the page the browser is redirected to (the
/// message is never put in the URL).
enum ConsoleOutcomes {
    private static let messages = Mutex<[String: String]>([:])

    static func remember(id: String, message: String) {
        messages.withLock { values in
            if values.count > 100 { values.removeAll() }
            values[id] = PrintableText.excerpt(message, limit: 300)
        }
    }

    static func take(id: String) -> String {
        messages.withLock { $0.removeValue(forKey: id) } ?? "see the audit log"
    }
}
