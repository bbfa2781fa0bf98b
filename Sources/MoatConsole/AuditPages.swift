import Foundation
import HTTPTypes
import Hummingbird
import MoatAudit
import MoatCore
import MoatHTTP
import NIOCore

/// The console's audit page (`/audit`): the log newest first, filtered by time range, actor, action and
/// outcome (GET parameters, checked strictly: a bad one is said on the page and filters nothing), a page
/// of at most ``maximumLimit`` entries at a time; the filtered entries as a CSV or JSONL download (the
/// code of `moat audit export`); Verify (the code of `moat audit verify`, recorded as `audit.verify`);
/// and a signed checkpoint to keep elsewhere (the code of `moat audit checkpoint`).
enum AuditPages {
    static let defaultLimit = 50
    static let maximumLimit = 200

    /// A filter the page understood, with the query text that asks for it again (for links).
    struct Query {
        var filter = AuditReader.Filter()
        var limit = defaultLimit
        /// The fields as given (for the form and the links), without `before`.
        var fields: [(String, String)] = []
    }

    static func register(on pages: RouterGroup<GatewayRequestContext>, audit: AuditLog) {
        pages.get("/audit") { request, context -> Response in
            let (values, status) = await show(request, audit: audit)
            return ConsoleRoutes.page(
                "audit", "Audit", ConsoleTemplates.render("audit", values), path: "/audit", context: context,
                status: status)
        }
        pages.get("/audit/export") { request, context -> Response in
            let format: AuditExportFormat
            let query: Query
            do throws(ConsoleNotices.Invalid) {
                guard let named = AuditExportFormat(rawValue: request.uri.queryParameters.get("format") ?? "") else {
                    throw ConsoleNotices.Invalid("format must be csv or jsonl")
                }
                (format, query) = (named, try parse(request))
            } catch {
                let values: [String: Any] = [
                    "notice": ["text": error.message + "; nothing was exported.", "ok": false]
                ]
                return ConsoleRoutes.page(
                    "audit", "Audit", ConsoleTemplates.render("audit", values), path: "/audit", context: context,
                    status: .badRequest)
            }
            do {
                // The first page is read before the answer starts, so a log that cannot be read is a
                // notice; the rest is sent as it is read (a long log is never held whole in memory).
                var pages = format.pages(of: audit.database, filter: query.filter)
                let first = try await pages.next()
                var headers: HTTPFields = [
                    .contentType: format == .csv ? "text/csv; charset=utf-8" : "application/jsonl",
                    .contentDisposition: "attachment; filename=\"moat-audit.\(format.rawValue)\"",
                ]
                headers[.cacheControl] = "no-store"
                return Response(
                    status: .ok, headers: headers,
                    body: ResponseBody { [pages] writer in
                        var pages = pages
                        if let first { try await writer.write(ByteBuffer(string: first)) }
                        while let page = try await pages.next() { try await writer.write(ByteBuffer(string: page)) }
                        try await writer.finish(nil)
                    })
            } catch {
                return ConsoleNotices.redirect("/audit", "Could not export the audit log: \(error)", ok: false)
            }
        }
        pages.post("/audit/verify") { _, _ -> Response in
            do {
                let report = try await audit.verifyAndRecord(kept: nil)
                return ConsoleNotices.redirect("/audit", report.summary, ok: report.brokenSequence == nil)
            } catch {
                return ConsoleNotices.redirect("/audit", "Could not verify the audit log: \(error)", ok: false)
            }
        }
        pages.post("/audit/checkpoint") { _, _ -> Response in
            do {
                let signed = try await audit.signedCheckpointNote()
                return download(
                    signed.note, type: "text/plain; charset=utf-8", name: "moat-checkpoint-\(signed.count).txt")
            } catch {
                return ConsoleNotices.redirect("/audit", "Could not sign a checkpoint: \(error)", ok: false)
            }
        }
    }

    /// A download of `text` named `name`, never cached.
    static func download(_ text: String, type: String, name: String) -> Response {
        var headers: HTTPFields = [.contentType: type, .contentDisposition: "attachment; filename=\"\(name)\""]
        headers[.cacheControl] = "no-store"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// The page's values and status: 400 (and the whole log, unfiltered) when a parameter is bad.
    static func show(_ request: Request, audit: AuditLog) async -> ([String: Any], HTTPResponse.Status) {
        var values: [String: Any] = [:]
        var status = HTTPResponse.Status.ok
        var query = Query()
        var problems: [String] = []
        do throws(ConsoleNotices.Invalid) {
            query = try parse(request)
        } catch {
            problems.append(error.message + "; the list below is not filtered.")
            status = .badRequest
        }
        let given = Dictionary(query.fields, uniquingKeysWith: { first, _ in first })
        for name in ["since", "until", "actor", "action", "outcome"] {
            values[name] = PrintableText.strip(given[name] ?? "")
        }
        values["limit"] = query.limit
        let filterText = encode(query.fields)
        values["csv"] = "/audit/export?" + encode([("format", "csv")] + query.fields)
        values["jsonl"] = "/audit/export?" + encode([("format", "jsonl")] + query.fields)
        do {
            let entries = try await AuditReader.newest(of: audit.database, filter: query.filter, limit: query.limit)
            values["entries"] = entries.map(row)
            values["hasEntries"] = !entries.isEmpty
            if entries.count == query.limit, let last = entries.last {
                values["older"] = "/audit?" + encode(query.fields + [("before", String(last.sequence))])
            }
            if query.filter.beforeSequence != nil {
                values["newest"] = "/audit" + (filterText.isEmpty ? "" : "?" + filterText)
            }
        } catch {
            problems.append("Could not read the audit log: \(error)")
        }
        if let activity = try? await AuditActivity.read(audit.database), let verify = activity.lastVerify {
            values["lastVerify"] = ["time": verify.time, "outcome": verify.outcome, "ok": verify.outcome == "intact"]
        }
        values["notice"] = ConsoleNotices.take(request, problems: problems)
        return (values, status)
    }

    /// One entry as the page's table shows it.
    static func row(_ entry: AuditEntry) -> [String: Any] {
        [
            "seq": entry.sequence, "time": PrintableText.strip(entry.time), "actor": PrintableText.strip(entry.actor),
            "action": PrintableText.strip(entry.action), "target": PrintableText.excerpt(entry.target, limit: 120),
            "outcome": PrintableText.strip(entry.outcome), "from": PrintableText.strip(entry.sourceIP),
            "metadata": entry.metadata == "{}" ? "" : PrintableText.excerpt(entry.metadata, limit: 200),
        ]
    }

    /// The query's filter, each parameter checked: times as `moat audit export` takes them, an actor of
    /// printable characters, an action (or a prefix ending in `*`) and an outcome of the characters the
    /// log's names use, `before` an entry number and `limit` from 1 to ``maximumLimit``.
    static func parse(_ request: Request) throws(ConsoleNotices.Invalid) -> Query {
        var query = Query()
        let parameters = request.uri.queryParameters
        func value(_ name: String) -> String? {
            guard let text = parameters.get(name), !text.isEmpty else { return nil }
            return text
        }
        for (name, bound) in [("since", \AuditReader.Filter.since), ("until", \AuditReader.Filter.until)] {
            guard let text = value(name) else { continue }
            guard let time = AuditReader.Filter.time(text) else {
                throw ConsoleNotices.Invalid("“\(name)” must be " + AuditReader.Filter.timeAdvice)
            }
            query.filter[keyPath: bound] = time
            query.fields.append((name, text))
        }
        if let actor = value("actor") {
            guard actor.count <= 128, PrintableText.strip(actor) == actor else {
                throw ConsoleNotices.Invalid("“actor” must be at most 128 printable characters")
            }
            query.filter.actor = actor
            query.fields.append(("actor", actor))
        }
        if let action = value("action") {
            guard action.count <= 64, action.wholeMatch(of: /[a-z0-9_.\-]+\*?|\*/) != nil else {
                throw ConsoleNotices.Invalid(
                    "“action” must be an action such as vault.add, or a prefix ending in * such as vault.*")
            }
            query.filter.action = action == "*" ? nil : action
            query.fields.append(("action", action))
        }
        if let outcome = value("outcome") {
            guard outcome.count <= 64, outcome.wholeMatch(of: /[a-z0-9_.\-]+/) != nil else {
                throw ConsoleNotices.Invalid("“outcome” must be an outcome such as success, denied or intact")
            }
            query.filter.outcome = outcome
            query.fields.append(("outcome", outcome))
        }
        if let text = value("limit") {
            guard let limit = Int(text), (1...maximumLimit).contains(limit) else {
                throw ConsoleNotices.Invalid("“limit” must be a number from 1 to \(maximumLimit)")
            }
            query.limit = limit
            query.fields.append(("limit", text))
        }
        if let text = value("before") {
            guard let before = Int64(text), before > 0 else {
                throw ConsoleNotices.Invalid("“before” must be an entry number")
            }
            query.filter.beforeSequence = before
        }
        return query
    }

    /// `fields` as a query string, every value percent-encoded.
    static func encode(_ fields: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return fields.map { name, value in
            name + "=" + (value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")
        }.joined(separator: "&")
    }
}
