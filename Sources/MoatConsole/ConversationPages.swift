import Foundation
import Hummingbird
import MoatAdmin
import MoatAgent
import MoatCore
import MoatHTTP

/// The console's conversations: every conversation grouped by principal (`/conversations`), and one
/// conversation turn by turn (`/conversations/{id}`) with each tool call and the gateway's decision,
/// the turns that ran tainted marked with why. Read only; everything shown that a model, a sender or a
/// tool produced goes through ``PrintableText`` and the templates' escaping.
enum ConversationPages {
    /// How much of one message the page shows (the rest is in `moat.db`).
    static let messageLimit = 4000

    static func register(
        on pages: RouterGroup<GatewayRequestContext>, agent: Agent, operations: AdminOperations?
    ) {
        pages.get("/conversations") { request, context -> Response in
            let values = await list(agent: agent, contacts: await contacts(request, context, operations))
            return ConsoleRoutes.page(
                "conversations", "Conversations", ConsoleTemplates.render("conversations", values),
                path: "/conversations", context: context)
        }
        pages.get("/conversations/{id}") { request, context -> Response in
            let id = context.parameters.get("id") ?? ""
            guard ConsoleRoutes.isPlainID(id) else { return Response(status: .notFound) }
            let transcript: ConversationTranscript?
            do {
                transcript = try await agent.transcript(id)
            } catch {
                transcript = nil
            }
            guard let transcript else {
                return ConsoleRoutes.page(
                    "conversation", "Conversation",
                    ConsoleTemplates.render("conversation", ["missing": true]), path: "/conversations",
                    context: context, status: .notFound)
            }
            let values = show(transcript, contacts: await contacts(request, context, operations))
            return ConsoleRoutes.page(
                "conversation", "Conversation", ConsoleTemplates.render("conversation", values),
                path: "/conversations", context: context)
        }
    }

    /// Contact id → `channel sender`, for naming principals.
    static func contacts(
        _ request: Request, _ context: GatewayRequestContext, _ operations: AdminOperations?
    ) async -> [String: String] {
        guard let operations,
            case .contacts(let contacts) = try? await operations.perform(
                .contactList, client: OwnerAccessMiddleware.client(request, context))
        else { return [:] }
        return Dictionary(
            contacts.map { ($0.id, $0.channel + " " + $0.sender) }, uniquingKeysWith: { first, _ in first })
    }

    /// `owner` → "You (owner)", `contact:ID` → "Contact ID (channel sender)".
    static func principal(_ principal: String, contacts: [String: String]) -> String {
        if principal == "owner" { return "You (owner)" }
        guard principal.hasPrefix("contact:") else { return PrintableText.strip(principal) }
        let id = String(principal.dropFirst("contact:".count))
        let name = contacts[id].map { " (\($0))" } ?? " (removed)"
        return PrintableText.strip("Contact " + id + name)
    }

    static func list(agent: Agent, contacts: [String: String]) async -> [String: Any] {
        let summaries: [ConversationSummary]
        do {
            summaries = try await agent.conversations()
        } catch {
            return ["notice": "Could not read the conversations: " + PrintableText.excerpt("\(error)", limit: 200)]
        }
        var order: [String] = []
        var rows: [String: [[String: Any]]] = [:]
        for summary in summaries {
            if rows[summary.principal] == nil { order.append(summary.principal) }
            rows[summary.principal, default: []].append([
                "id": PrintableText.strip(summary.id), "channel": PrintableText.strip(summary.channel),
                "last": ConsoleRoutes.time(summary.lastAt), "messages": summary.messages, "calls": summary.toolCalls,
                "verified": summary.verified,
            ])
        }
        let groups = order.map { principal -> [String: Any] in
            ["label": Self.principal(principal, contacts: contacts), "rows": rows[principal] ?? []]
        }
        return ["groups": groups, "count": summaries.count]
    }

    static func show(_ transcript: ConversationTranscript, contacts: [String: String]) -> [String: Any] {
        let summary = transcript.summary
        let turns = transcript.turns.map { turn -> [String: Any] in
            let messages = turn.messages.map { message -> [String: Any] in
                let content = PrintableText.stripKeepingLines(message.content)
                let shown =
                    content.count > messageLimit
                    ? String(content.prefix(messageLimit)) + "\n… (shortened: \(content.count) characters)" : content
                return [
                    "role": ["user", "assistant", "tool", "system"].contains(message.role) ? message.role : "other",
                    "label": label(message.role), "content": shown, "empty": content.isEmpty,
                    "asks": message.calls.map { PrintableText.excerpt($0, limit: 200) },
                ]
            }
            let calls = turn.calls.map { call -> [String: Any] in
                var row: [String: Any] = [
                    "tool": PrintableText.strip(call.tool), "domain": PrintableText.strip(call.domain),
                    "level": call.level, "decision": PrintableText.strip(call.decision),
                    "outcome": PrintableText.strip(call.outcome),
                    "destination": PrintableText.strip(call.destination),
                    "short": PrintableText.excerpt(call.arguments, limit: 160),
                ]
                // Every key set on every row: Mustache looks a missing key up in the enclosing
                // context (the page's own `taint`).
                row["decidedTainted"] = !call.taint.isEmpty
                row["callTaint"] = PrintableText.strip(call.taint)
                row["hasApproval"] = call.approvalID != nil
                row["approval"] = PrintableText.strip(call.approvalID ?? "")
                return row
            }
            return [
                "id": PrintableText.strip(turn.id), "started": ConsoleRoutes.time(turn.startedAt),
                "messages": messages, "calls": calls, "hasCalls": !calls.isEmpty,
                "tainted": !turn.taint.isEmpty, "why": PrintableText.strip(turn.taint.joined(separator: "; ")),
                "taintedHere": turn.taintedHere.map { PrintableText.strip($0) },
            ]
        }
        var values: [String: Any] = [
            "id": PrintableText.strip(summary.id), "channel": PrintableText.strip(summary.channel),
            "principal": principal(summary.principal, contacts: contacts),
            "created": ConsoleRoutes.time(summary.createdAt), "messages": summary.messages,
            "calls": summary.toolCalls, "verified": summary.verified, "turns": turns,
        ]
        if !transcript.taint.isEmpty {
            values["taint"] = PrintableText.strip(transcript.taint.joined(separator: "; "))
        }
        return values
    }

    static func label(_ role: String) -> String {
        switch role {
        case "user": "Message"
        case "assistant": "Agent"
        case "tool": "Tool result"
        case "system": "System"
        default: "Other"
        }
    }
}
