import Foundation
import MoatPolicy
import MoatTestSupport
import Testing

/// One labelled text of the evaluation set (Corpus/eval/README.md says where each comes from).
struct LabelledText: Decodable, Sendable {
    let label: String
    let source: String
    let text: String
}

/// Recall and false-positive rate of the flagger on one file of the evaluation set.
struct FlaggerFigures: Sendable {
    struct Count {
        var total = 0
        var flagged = 0
    }

    var attacks = Count()
    var benign = Count()
    var outOfScope = Count()
    /// Per `label source`, for the report.
    var bySource: [String: Count] = [:]
    var missed: [LabelledText] = []
    var falsePositives: [LabelledText] = []

    init(_ examples: [LabelledText]) {
        for example in examples {
            let flagged = !InjectionFlagger.scan(example.text).isEmpty
            func count(_ value: inout Count) {
                value.total += 1
                if flagged { value.flagged += 1 }
            }
            switch example.label {
            case "attack":
                count(&attacks)
                if !flagged { missed.append(example) }
            case "benign":
                count(&benign)
                if flagged { falsePositives.append(example) }
            default: count(&outOfScope)
            }
            count(&bySource["\(example.label) \(example.source)", default: Count()])
        }
    }

    var recall: Double { Double(attacks.flagged) / Double(max(attacks.total, 1)) }
    var falsePositiveRate: Double { Double(benign.flagged) / Double(max(benign.total, 1)) }

    /// The figures as printed by the evaluation tests (and copied into Docs/Policy.md).
    func report(_ name: String) -> String {
        var lines = ["flagger evaluation, \(name):"]
        for (key, count) in bySource.sorted(by: { $0.key < $1.key }) {
            lines.append("  \(key): \(count.flagged)/\(count.total) flagged")
        }
        lines.append(
            "  recall \(attacks.flagged)/\(attacks.total) = \(String(format: "%.1f", recall * 100))%, "
                + "false positives \(benign.flagged)/\(benign.total) = \(String(format: "%.1f", falsePositiveRate * 100))%, "
                + "out of scope flagged \(outOfScope.flagged)/\(outOfScope.total)")
        return lines.joined(separator: "\n")
    }
}

extension Corpus {
    static func labelled(_ name: String) throws -> [LabelledText] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "Corpus/eval/\(name)")
        return try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
            try JSONDecoder().decode(LabelledText.self, from: Data($0.utf8))
        }
    }
}

/// The measured figures of Docs/Policy.md: `swift test --filter InjectionFlaggerEvaluationTests` prints them.
@Suite struct InjectionFlaggerEvaluationTests {
    @Test(
        "on the held-out set (public sources the rules were not tuned on) recall is at least 80% and false positives at most 2%"
    )
    func heldOut() async throws {
        let examples = try Corpus.labelled("heldout.jsonl")
        let figures = await Self.figures(examples)
        // Counts only: the held-out texts stay unread, so they can measure the next change too.
        print(figures.report("held-out set"))
        let publicAttackSources = Set(
            examples.filter { $0.label == "attack" && !$0.source.hasPrefix("moat-") }.map(\.source))
        #expect(publicAttackSources.count >= 2)
        #expect(figures.attacks.total >= 150 && figures.benign.total >= 200)
        #expect(figures.recall >= 0.80)
        #expect(figures.falsePositiveRate <= 0.02)
    }

    @Test("on the development set the flagger keeps the figures it was tuned to (recall ≥ 85%, false positives ≤ 1%)")
    func development() async throws {
        let figures = await Self.figures(try Corpus.labelled("dev.jsonl"))
        print(figures.report("development set"))
        for example in figures.missed { print("dev missed [\(example.source)]: \(example.text.prefix(160))") }
        for example in figures.falsePositives {
            print("dev false positive [\(example.source)]: \(example.text.prefix(160))")
        }
        #expect(figures.recall >= 0.85)
        #expect(figures.falsePositiveRate <= 0.01)
    }

    /// The figures for `examples`, computed on a thread of its own at the lowest CPU priority: tens of seconds
    /// of CPU in a debug build, which would otherwise hold up the other tests' servers and clients.
    static func figures(_ examples: [LabelledText]) async -> FlaggerFigures {
        await atLowestPriority { FlaggerFigures(examples) }
    }

    @Test("the two files share no text, so nothing tuned on is measured again")
    func disjoint() throws {
        let development = Set(try Corpus.labelled("dev.jsonl").map(\.text))
        let heldOut = try Corpus.labelled("heldout.jsonl").map(\.text)
        #expect(!heldOut.isEmpty)
        #expect(heldOut.allSatisfy { !development.contains($0) })
    }
}
