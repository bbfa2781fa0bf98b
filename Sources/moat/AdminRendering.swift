import Foundation
import MoatAdmin
import MoatAgent
import MoatAuth
import MoatCore
import MoatPolicy
import MoatVault

// The text (and `--json`) the CLI prints for each admin operation's result. The server never renders:
// it answers an ``AdminResult``, and this is the one place that turns it into output, so a command prints
// the same bytes whether it ran through the admin socket or in its own process.

/// A result as the CLI prints it: `output` on stdout, `note` (details, never the result itself) on stderr.
struct RenderedResult: Sendable, Equatable {
    var output: String
    var note: String?
}

extension AdminResult {
    /// The text the CLI prints; `json` asks for JSON where the command has `--json` (token and
    /// approval lists).
    func rendered(json: Bool = false) throws -> RenderedResult {
        switch self {
        case .tokenCreated(let created):
            return RenderedResult(
                output: created.token + "\n",
                note: "token \(created.prefix) (\(created.scope.rawValue), expires \(created.expiresAt ?? "never")) "
                    + "— shown only this once; send it as `Authorization: Bearer <token>`\n")
        case .vaultAdded(let added):
            var notes: [String] = []
            if added.shortValue {
                notes.append("warning: values under 4 bytes are not scrubbed from tool output and logs")
            }
            if !added.usable {
                notes.append(
                    "note: no tool can use \(added.name) yet; allow one with --replace --allow-tool T --allow-host H")
            }
            return RenderedResult(output: text, note: notes.isEmpty ? nil : notes.map { $0 + "\n" }.joined())
        case .tokens(let tokens) where json:
            let data = try JSONSerialization.data(
                withJSONObject: tokens.map(\.jsonObject), options: [.sortedKeys, .prettyPrinted])
            return RenderedResult(output: String(decoding: data, as: UTF8.self) + "\n")
        case .chatTurn(let turn) where json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return RenderedResult(output: String(decoding: try encoder.encode(turn), as: UTF8.self) + "\n")
        case .vaultSecrets(let secrets) where json:
            let dates = ISO8601DateFormatter()
            let items: [[String: Any]] = secrets.map {
                [
                    "name": $0.name, "tools": $0.policy.tools, "hosts": $0.policy.hosts,
                    "created": dates.string(from: $0.createdAt), "updated": dates.string(from: $0.updatedAt),
                ]
            }
            let data = try JSONSerialization.data(withJSONObject: items, options: [.prettyPrinted, .sortedKeys])
            return RenderedResult(output: String(decoding: data, as: UTF8.self) + "\n")
        case .vaultRekeyed(let rekeyed):
            return RenderedResult(
                output: text,
                note: rekeyed.staleRecoveryKey.map {
                    "note: \($0) holds the old recovery key, which no longer opens the vault; delete it\n"
                })
        case .usage(let entries, _) where json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            return RenderedResult(output: String(decoding: try encoder.encode(entries), as: UTF8.self) + "\n")
        case .approvals(let records, _) where json:
            let data = try JSONSerialization.data(withJSONObject: records.map(AdminText.json), options: [.sortedKeys])
            return RenderedResult(output: String(decoding: data, as: UTF8.self) + "\n")
        default:
            return RenderedResult(output: text)
        }
    }

    /// The text rendering of every result (stdout).
    var text: String {
        switch self {
        case .ownerStatus(nil):
            return "no owner yet: run `moat owner setup`\n"
        case .ownerStatus(let status?):
            return "owner: \(status.username)\ntwo-factor (TOTP): \(status.totp ? "on" : "off")\n"
                + "active API tokens: \(status.activeTokens)\n"
        case .ownerSetUp(let url?):
            return "owner set up; log in at \(url)/login\n"
        case .ownerSetUp(nil):
            return "owner set up; start `moat serve` and log in at its address "
                + "(http://127.0.0.1:18789/login by default)\n"
        case .setupLink(let link):
            return link + "\n"
        case .passwordChanged:
            return "password changed; every session was ended\n"
        case .revokedAll(let tokens):
            return "every session and live token was ended" + (tokens ? ", and every API token revoked" : "") + "\n"
        case .totpEnrolment(let qrText, let uri, let secret):
            return qrText + "\n" + uri + "\n\nsecret (to type in by hand): " + secret + "\n"
        case .recoveryCodes(let codes):
            return
                "two-factor login is on. Recovery codes — each works once in place of a code; store them offline:\n\n"
                + codes.map { "    " + $0 }.joined(separator: "\n") + "\n"
        case .tokenCreated(let created):
            return created.token + "\n"
        case .tokens(let tokens):
            return AdminText.table(tokens)
        case .tokenRevoked(let prefix):
            return "revoked \(prefix)\n"
        case .trust(let items):
            return items.map(AdminText.line).joined()
        case .trustChanged(let change):
            return "change \(change.id): \(change.domain) \(change.from) -> \(change.to) (\(change.kind))\n"
        case .trustRolledBack(let change, let id):
            return "change \(change.id): \(change.domain) \(change.from) -> \(change.to) (rollback of \(id))\n"
        case .trustHistory(let changes):
            return changes.map(AdminText.line).joined()
        case .approvals(let records, let all):
            if records.isEmpty { return all ? "no approvals\n" : "no pending approvals\n" }
            return records.map { AdminText.line($0) + "\n" }.joined()
        case .approval(let record):
            return AdminText.line(record) + "\n"
                + PrintableText.strip("tool:        \(record.tool)") + "\n"
                + PrintableText.strip("arguments:   \(record.arguments)") + "\n"
                + PrintableText.strip("destination: \(record.destination)") + "\n"
                + "hash:        \(record.requestHash)\n"
        case .approved(let id):
            return "approved \(id)\n"
        case .denied(let id):
            return "denied \(id)\n"
        case .vaultAdded(let added):
            return "\(added.replaced ? "stored" : "added") \(added.name) (\(added.policy))\n"
        case .vaultRemoved(let name):
            return "removed \(name)\n"
        case .contactAdded(let contact):
            return "added contact " + AdminText.line(contact) + "\n"
        case .contacts(let contacts):
            if contacts.isEmpty { return "no contacts\n" }
            return contacts.map { AdminText.line($0) + "\n" }.joined()
        case .contactRemoved(let id):
            return "removed contact \(id)\n"
        case .pairings(let pending):
            if pending.isEmpty { return "no pending pairings\n" }
            return pending.map { AdminText.line($0) + "\n" }.joined()
        case .pairingApproved(let contact):
            return "paired: added contact " + AdminText.line(contact) + "\n"
        case .pairingDenied(let pairing):
            return PrintableText.strip("denied the pairing of \(pairing.channel):\(pairing.sender)") + "\n"
        case .bindingCode(let pending):
            return PrintableText.stripKeepingLines(
                "Send this code to the agent from your own \(pending.channel) account before "
                    + "\(UTCTimestamp.format(secondsSince1970: Double(pending.expiresAt) / 1000)):\n\n    \(pending.code)\n\n"
                    + "Until then nothing changes; wrong codes sent on \(pending.channel) withdraw it.")
                + "\n"
        case .channelUnbound(let channel):
            return PrintableText.strip("unbound the owner's account on \(channel)") + "\n"
        case .metrics(let text):
            return text
        case .ownerBindings(let bindings):
            if bindings.isEmpty { return "no owner accounts bound\n" }
            return bindings.map {
                PrintableText.strip(
                    "\($0.channel) \($0.sender) bound \(UTCTimestamp.format(secondsSince1970: Double($0.boundAt) / 1000))"
                ) + "\n"
            }.joined()
        case .chatTurn(let turn):
            return AdminText.turn(turn)
        case .approvalResumed(let id, let approved, let turn):
            return "\(approved ? "approved" : "denied") \(id)\n" + AdminText.turn(turn)
        case .vaultSecrets(let secrets):
            return AdminText.table(secrets)
        case .usage(let entries, let days):
            return AdminText.usage(entries, days: days)
        case .vaultRekeyed(let rekeyed):
            return "re-keyed \(rekeyed.vault) with a new password and salt (\(rekeyed.parameters))\n"
                + (rekeyed.seal.map { "sealed again: \($0)\n" } ?? "")
        }
    }
}

/// The text forms of the listings.
enum AdminText {
    /// Control characters removed, so stored text cannot drive the owner's terminal.
    static func printable(_ text: String) -> String {
        String(PrintableText.strip(text).prefix(80))
    }

    static func table(_ secrets: [SecretSummary]) -> String {
        guard !secrets.isEmpty else { return "the vault holds no secrets; add one with moat vault add NAME\n" }
        let dates = ISO8601DateFormatter()
        let width = max(4, secrets.map(\.name.count).max() ?? 0)
        var text = "NAME".padding(toLength: width, withPad: " ", startingAt: 0) + "  UPDATED               POLICY\n"
        for secret in secrets {
            let name = secret.name.padding(toLength: width, withPad: " ", startingAt: 0)
            text += "\(name)  \(dates.string(from: secret.updatedAt))  \(secret.policy.summary)\n"
        }
        return text
    }

    static func table(_ tokens: [TokenView]) -> String {
        guard !tokens.isEmpty else { return "no API tokens; create one with `moat token create NAME`\n" }
        var lines = [["PREFIX", "NAME", "SCOPE", "CREATED", "LAST USED", "EXPIRES", "STATE"]]
        for token in tokens {
            let state = token.revokedAt != nil ? "revoked" : (token.active ? "active" : "expired")
            lines.append([
                token.prefix, printable(token.name), token.scope.rawValue, token.createdAt,
                token.lastUsedAt ?? "never", token.expiresAt ?? "never", state,
            ])
        }
        return columns(lines)
    }

    /// Token use per day, principal and provider, with each day's total.
    static func usage(_ entries: [UsageLedger.Entry], days: Int) -> String {
        let span = days == 1 ? "today (UTC)" : "the last \(days) days (UTC)"
        guard !entries.isEmpty else { return "no model tokens used \(span)\n" }
        let limited = entries.contains { $0.dailyLimit != nil }
        var lines = [["DAY", "PRINCIPAL", "PROVIDER", "ROUNDS", "IN", "OUT", "TOTAL"] + (limited ? ["LIMIT/DAY"] : [])]
        for entry in entries {
            lines.append(
                [
                    entry.day, printable(entry.principal),
                    entry.provider.isEmpty ? "(not recorded)" : printable(entry.provider),
                    String(entry.rounds), String(entry.inputTokens), String(entry.outputTokens),
                    String(entry.inputTokens + entry.outputTokens),
                ] + (limited ? [entry.dailyLimit.map(String.init) ?? "-"] : []))
        }
        let total = entries.reduce(0) { $0 + $1.inputTokens + $1.outputTokens }
        return columns(lines) + "total \(span): \(total) tokens\n" + limits(entries)
    }

    /// For each provider with a `daily_token_limit` used on the newest day listed: how much of it is used.
    static func limits(_ entries: [UsageLedger.Entry]) -> String {
        guard let day = entries.first?.day else { return "" }
        var used: [String: (tokens: Int, limit: Int)] = [:]
        for entry in entries where entry.day == day {
            guard let limit = entry.dailyLimit else { continue }
            used[entry.provider, default: (0, limit)].tokens += entry.inputTokens + entry.outputTokens
        }
        return used.keys.sorted().map { name in
            let (tokens, limit) = used[name] ?? (0, 0)
            let state =
                tokens >= limit ? "reached: nothing more is sent to it until midnight UTC" : "\(limit - tokens) left"
            return printable(
                "provider \(name) on \(day): \(tokens) of its daily_token_limit \(limit) tokens (\(state))")
                + "\n"
        }.joined()
    }

    /// Rows as left-aligned columns two spaces apart, the first row the header.
    static func columns(_ lines: [[String]]) -> String {
        let widths = (0..<lines[0].count).map { column in lines.map { $0[column].count }.max() ?? 0 }
        return lines.map { row in
            row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n") + "\n"
    }

    static func line(_ item: DomainTrustView) -> String {
        var line = "\(item.domain.rawValue.padding(toLength: 13, withPad: " ", startingAt: 0))\(item.level)"
        if let change = item.lastChange {
            line += "  (change \(change.id), \(PolicyEngine.timestamp(change.createdAt)), \(change.kind))"
        } else {
            line += "  (default)"
        }
        if item.tampered { line += "  TAMPERED ROWS IGNORED, see `moat audit tail`" }
        return PrintableText.strip(line) + "\n"
    }

    /// A turn: the reply, then what waits for the owner, what was only described, and a budget's stop.
    /// The model's text is printed without control characters (it is untrusted output).
    /// The turn as `moat chat` prints it; `streamed` leaves out what the live stream already showed (the
    /// reply and the pending approvals).
    static func turn(_ turn: TurnView, streamed: Bool = false) -> String {
        var text = streamed ? "" : PrintableText.stripKeepingLines(turn.reply)
        if !streamed && !text.hasSuffix("\n") { text += "\n" }
        for pending in streamed ? [] : turn.pending { text += self.pending(pending) }
        for described in turn.described { text += PrintableText.strip("described, not run: " + described) + "\n" }
        if let stop = turn.stoppedBy { text += PrintableText.strip("stopped: " + stop) + "\n" }
        if let provider = turn.provider {
            let passed = (turn.fallbacks ?? []).joined(separator: ", ")
            text += "answered by provider \(provider)" + (passed.isEmpty ? "" : " (passed over: \(passed))") + "\n"
        }
        text += "conversation \(turn.conversation)\n"
        return text
    }

    /// `pending approval ID: …` and the commands that decide it.
    static func pending(_ pending: TurnView.Pending) -> String {
        PrintableText.strip(
            "pending approval \(pending.approvalID): \(pending.tool): \(pending.summary) (\(pending.reason))")
            + "\n  decide with: moat approvals approve \(pending.approvalID)  |  moat approvals deny \(pending.approvalID)\n"
    }

    /// `ID CHANNEL:SENDER domain=level,…` (sender ids are printed without control characters).
    static func line(_ pending: PairingView) -> String {
        let expires = UTCTimestamp.format(secondsSince1970: Double(pending.expiresAt) / 1000)
        let who = pending.purpose == "bind" ? "owner binding" : "\(pending.channel):\(pending.sender)"
        return PrintableText.strip(
            "\(pending.code) \(pending.purpose) \(pending.channel) \(who) \(pending.state) until \(expires)")
    }

    static func line(_ contact: ContactView) -> String {
        let ceilings = contact.ceilings.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(
            separator: ",")
        return PrintableText.strip("\(contact.id) \(contact.channel):\(contact.sender) \(ceilings)")
    }

    static func line(_ change: TrustChangeView) -> String {
        var line =
            "\(change.id)  \(PolicyEngine.timestamp(change.createdAt))  \(change.domain)  "
            + "\(change.from.rawValue) -> \(change.to.rawValue)  \(change.kind)  by \(change.actor)"
        if let undone = change.rollbackOf { line += "  (undoes \(undone))" }
        line += "  reason: \(change.reason)  evidence: \(change.evidence)"
        return PrintableText.strip(line) + "\n"
    }

    static func line(_ record: ApprovalView) -> String {
        PrintableText.strip(
            "\(record.id)  \(record.status)  \(record.domain)  \(record.tool)  "
                + "\(record.destination.isEmpty ? "-" : record.destination)  by \(record.principal)  "
                + "expires \(PolicyEngine.timestamp(record.expiresAt))"
                + (record.heldBecause.map { "  held: \($0)" } ?? "")
        )
    }

    static func json(_ record: ApprovalView) -> [String: Any] {
        [
            "id": record.id, "status": record.status, "domain": record.domain.rawValue,
            "tool": record.tool, "arguments": record.arguments,
            "destination": record.destination, "request_hash": record.requestHash,
            "principal": record.principal, "created_at": PolicyEngine.timestamp(record.createdAt),
            "expires_at": PolicyEngine.timestamp(record.expiresAt), "held_because": record.heldBecause ?? NSNull(),
        ]
    }
}
