import Foundation

/// One figure of Docs/Performance.md as measured by `moat-bench all`: the value, the goal it is held to
/// (nil where the project set none) and whether the value meets it.
struct Figure: Encodable, Sendable {
    /// What was measured, e.g. "idle RSS of moat serve".
    let name: String
    /// The measurement, in `unit`; nil when it could not be taken here (`note` says why).
    let value: Double?
    let unit: String
    /// The goal in words, e.g. "≤ 40,000 kB"; nil: no goal is set for this figure.
    let goal: String?
    /// Whether `value` meets the goal; nil without a goal or a value.
    let met: Bool?
    /// How it was measured (sizes, tool) or why it was skipped.
    let note: String

    init(_ name: String, _ value: Double?, _ unit: String, goal: String? = nil, met: Bool? = nil, note: String = "") {
        self.name = name
        self.value = value
        self.unit = unit
        self.goal = goal
        self.met = value == nil ? nil : met
        self.note = note
    }

    /// The value with the unit, digits chosen by size ("1,234 req/s", "4.61 ms").
    var measured: String {
        guard let value else { return "—" }
        let digits = abs(value) >= 100 ? 0 : abs(value) >= 10 ? 1 : 2
        let text = String(format: "%.\(digits)f", value)
        let integer = text.prefix { $0 != "." }
        var grouped = ""
        for (index, character) in integer.reversed().enumerated() {
            if index > 0, index % 3 == 0, character != "-" { grouped.insert(",", at: grouped.startIndex) }
            grouped.insert(character, at: grouped.startIndex)
        }
        return grouped + text.dropFirst(integer.count) + " " + unit
    }

    var result: String {
        switch met {
        case .some(true): "pass"
        case .some(false): "MISS"
        case .none: value == nil ? "skipped" : "—"
        }
    }
}

/// The suite's output: a table for people, one JSON document for machines.
enum FigureReport {
    /// Columns: figure, measured, goal, result; then each figure's note, numbered.
    static func table(_ figures: [Figure], header: [String]) -> String {
        let rows = figures.map { [$0.name, $0.measured, $0.goal ?? "no goal set", $0.result] }
        let titles = ["figure", "measured", "goal", "result"]
        let widths = titles.indices.map { column in
            ([titles[column]] + rows.map { $0[column] }).map(\.count).max() ?? 0
        }
        func line(_ cells: [String]) -> String {
            zip(cells, widths).map { cell, width in cell.padding(toLength: width, withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        var lines = header
        lines.append(line(titles))
        lines.append(line(widths.map { String(repeating: "-", count: $0) }))
        lines += rows.map(line)
        let misses = figures.filter { $0.met == false }.count
        let met = figures.filter { $0.met == true }.count
        lines.append("")
        lines.append("\(met) goals met, \(misses) missed, \(figures.filter { $0.value == nil }.count) skipped")
        lines.append("")
        for figure in figures where !figure.note.isEmpty {
            lines.append("- \(figure.name): \(figure.note)")
        }
        return lines.joined(separator: "\n")
    }

    static func json(_ figures: [Figure], machine: [String: String]) throws -> String {
        struct Document: Encodable {
            let machine: [String: String]
            let figures: [Figure]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(Document(machine: machine, figures: figures)), as: UTF8.self)
    }
}
