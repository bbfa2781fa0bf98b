import Foundation

/// What every match of a regular expression must contain, so a text that lacks it can skip the
/// expression.
///
/// The injection flagger runs about 90 expressions over each window of text; most cannot match a given
/// window because it lacks their words. ``RegexLiterals/required(_:)`` reads an ICU pattern (the subset
/// the flagger uses) and returns sets of strings such that every match contains, for each set, at least
/// one of its strings as a substring (of code points, so a UTF-8 byte search finds it); or nil when it
/// can say nothing. It errs only towards knowing less: any construct it does not know makes the whole
/// pattern unknown, and an unknown pattern always runs. Patterns are matched case-sensitively (the
/// flagger lower-cases the text first).
enum RegexLiterals {
    /// What is known about the strings a piece of pattern matches.
    enum Info: Equatable {
        /// It matches exactly one of these strings.
        case exact(Set<String>)
        /// Every match contains one string of each set (no set: nothing is known).
        case required([Set<String>])

        /// The sets, each a requirement; a set holding "" requires nothing and is left out.
        var clauses: [Set<String>] {
            switch self {
            case .exact(let set): set.contains("") ? [] : [set]
            case .required(let sets): sets.filter { !$0.contains("") }
            }
        }

        /// The most selective single set, if any.
        var best: Set<String>? {
            clauses.max { RegexLiterals.score($0) < RegexLiterals.score($1) }
        }

        static let unknown = Info.required([])
    }

    /// Exact sets larger than this are cut into separate requirements.
    static let maximumSet = 400

    /// Sets of strings such that every match of `pattern` holds one string of each, or nil.
    static func required(_ pattern: String) -> [Set<String>]? {
        var parser = Parser(scalars: Array(pattern.unicodeScalars))
        guard let info = parser.alternation(), parser.index == parser.scalars.count else { return nil }
        let clauses = info.clauses
        return clauses.isEmpty ? nil : clauses
    }

    /// How selective a set is: the length of its shortest string in bytes (0 when it holds "").
    static func score(_ strings: Set<String>) -> Int {
        strings.map(\.utf8.count).min() ?? 0
    }

    struct Parser {
        let scalars: [Unicode.Scalar]
        var index = 0

        var current: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

        /// Branches separated by `|`, up to a `)` or the end; nil on a construct it does not know.
        mutating func alternation() -> Info? {
            var branches: [Info] = []
            while true {
                guard let branch = sequence() else { return nil }
                branches.append(branch)
                guard current == "|" else { break }
                index += 1
            }
            if branches.count == 1 { return branches[0] }
            var union = Set<String>()
            var allExact = true
            for branch in branches {
                if case .exact(let set) = branch {
                    union.formUnion(set)
                } else {
                    // Any match holds a match of one branch, so one string of that branch's best set.
                    guard let best = branch.best else { return .unknown }
                    union.formUnion(best)
                    allExact = false
                }
            }
            return allExact && union.count <= maximumSet ? .exact(union) : .required([union])
        }

        /// Quantified atoms one after another: every requirement of each holds for the whole.
        mutating func sequence() -> Info? {
            var run: Set<String> = [""]
            var exact = true
            var clauses: [Set<String>] = []
            func flush() {
                clauses.append(run)
                run = [""]
                exact = false
            }
            while let scalar = current, scalar != "|", scalar != ")" {
                guard let info = quantified() else { return nil }
                if case .exact(let set) = info {
                    if run.count * set.count <= RegexLiterals.maximumSet {
                        run = Set(run.flatMap { head in set.map { head + $0 } })
                    } else {
                        flush()
                        run = set
                    }
                } else {
                    flush()
                    clauses += info.clauses
                }
            }
            if exact { return .exact(run) }
            flush()
            return .required(clauses.filter { !$0.contains("") })
        }

        /// One atom with its quantifier, if any.
        mutating func quantified() -> Info? {
            guard let atom = atom() else { return nil }
            var minimum = 1
            var maximum: Int? = 1
            switch current {
            case "?":
                (minimum, maximum) = (0, 1)
                index += 1
            case "*":
                (minimum, maximum) = (0, nil)
                index += 1
            case "+":
                (minimum, maximum) = (1, nil)
                index += 1
            case "{":
                index += 1
                guard let low = number() else { return nil }
                minimum = low
                maximum = low
                if current == "," {
                    index += 1
                    maximum = number()
                }
                guard current == "}" else { return nil }
                index += 1
            default:
                return atom
            }
            // Lazy or possessive forms match the same strings.
            if current == "?" || current == "+" { index += 1 }
            if minimum == 0 {
                if maximum == 1, case .exact(let set) = atom { return .exact(set.union([""])) }
                return .unknown
            }
            if minimum == 1 && maximum == 1 { return atom }
            // Each match holds at least one match of the atom.
            return .required(atom.clauses)
        }

        mutating func number() -> Int? {
            var value: Int?
            while let scalar = current, let digit = Int(String(scalar)) {
                value = (value ?? 0) * 10 + digit
                index += 1
            }
            return value
        }

        /// A literal, class, escape, assertion or group.
        mutating func atom() -> Info? {
            guard let scalar = current else { return nil }
            index += 1
            switch scalar {
            case "^", "$": return .exact([""])
            case ".": return .unknown
            case "[":
                let start = index
                guard characterClass() else { return nil }
                return Self.smallClass(scalars[start..<(index - 1)]).map { Info.exact($0) } ?? Info.unknown
            case "(":
                var lookaround = false
                if current == "?" {
                    index += 1
                    switch current {
                    case ":": index += 1
                    case "=", "!":
                        index += 1
                        lookaround = true
                    case "<":
                        index += 1
                        guard current == "=" || current == "!" else { return nil }
                        index += 1
                        lookaround = true
                    default: return nil  // inline flags, named groups, …: not understood
                    }
                }
                guard let inner = alternation(), current == ")" else { return nil }
                index += 1
                // A lookaround consumes nothing: what is around it stays contiguous in the match.
                return lookaround ? .exact([""]) : inner
            case "\\":
                guard let escaped = current else { return nil }
                index += 1
                switch escaped {
                case "b", "B", "A", "z", "Z", "G": return .exact([""])
                case "w", "W", "s", "S", "d", "D", "h", "H", "v", "V", "R", "X": return .unknown
                case "n": return .exact(["\n"])
                case "t": return .exact(["\t"])
                case "r": return .exact(["\r"])
                default:
                    if escaped.properties.isAlphabetic || ("0"..."9").contains(escaped) { return nil }
                    return .exact([String(escaped)])
                }
            case ")", "|", "?", "*", "+", "{": return nil
            default: return .exact([String(scalar)])
            }
        }

        /// The members of a class body (between `[` and `]`) made only of a few plain characters or
        /// escaped punctuation (`["']`, `[.!?]`); nil for anything else (negation, ranges, `\s`, set
        /// operations, nesting), which then counts as unknown.
        static func smallClass(_ body: ArraySlice<Unicode.Scalar>) -> Set<String>? {
            var members = Set<String>()
            var escaped = false
            for scalar in body {
                if escaped {
                    guard !scalar.properties.isAlphabetic, !("0"..."9").contains(scalar) else { return nil }
                    members.insert(String(scalar))
                    escaped = false
                } else if scalar == "\\" {
                    escaped = true
                } else if ["[", "]", "-", "&", "$", "{", "}", ":"].contains(scalar)
                    || (scalar == "^" && members.isEmpty)
                {
                    return nil
                } else {
                    members.insert(String(scalar))
                }
            }
            return !escaped && !members.isEmpty && members.count <= 6 ? members : nil
        }

        /// Skips a `[...]` class (after its `[`); false when it is malformed or nested.
        mutating func characterClass() -> Bool {
            if current == "^" { index += 1 }
            if current == "]" { index += 1 }
            while let scalar = current {
                index += 1
                switch scalar {
                case "]": return true
                case "[": return false
                case "\\":
                    guard current != nil else { return false }
                    index += 1
                default: continue
                }
            }
            return false
        }
    }
}

/// Which of a list of regular expressions can possibly match a text: those whose required strings
/// (``RegexLiterals``) occur in it, found in one pass over its UTF-8 with an Aho–Corasick automaton.
struct RegexPrefilter: @unchecked Sendable {
    // @unchecked: immutable after creation.

    /// For each pattern, the ids of its clauses (sets of strings such that a match holds one string of
    /// each set); nil: always run it.
    let requirements: [[Int]?]
    /// The clauses each string satisfies: those of string `i` are `clauseIDs[clauseStart[i]..<clauseStart[i + 1]]`.
    let clauseStart: [Int32]
    let clauseIDs: [Int32]
    let clauses: Int
    /// Byte to column of `transitions` (0 for bytes in no required string).
    let column: [Int]
    let columns: Int
    /// The automaton's next state, `state * columns + column`.
    let transitions: [Int32]
    /// The ids of the strings that end at each state (including shorter suffixes): those of state `s` are
    /// `outputIDs[outputStart[s]..<outputStart[s + 1]]`, flat so the scan touches only the states it reaches.
    let outputStart: [Int32]
    let outputIDs: [Int32]
    let strings: Int

    init(patterns: [NSRegularExpression]) {
        var ids: [String: Int] = [:]
        var clausesOfString: [[Int32]] = []
        var clauses = 0
        requirements = patterns.map { pattern in
            RegexLiterals.required(pattern.pattern).map { sets in
                sets.map { strings in
                    defer { clauses += 1 }
                    for string in strings.sorted() {
                        if ids[string] == nil {
                            ids[string] = ids.count
                            clausesOfString.append([])
                        }
                        clausesOfString[ids[string]!].append(Int32(clauses))
                    }
                    return clauses
                }
            }
        }
        self.strings = ids.count
        self.clauses = clauses
        var clauseStart: [Int32] = [0]
        var clauseIDs: [Int32] = []
        for list in clausesOfString {
            clauseIDs += list
            clauseStart.append(Int32(clauseIDs.count))
        }
        self.clauseStart = clauseStart
        self.clauseIDs = clauseIDs
        var column = [Int](repeating: 0, count: 256)
        var columns = 1
        for string in ids.keys {
            for byte in string.utf8 where column[Int(byte)] == 0 {
                column[Int(byte)] = columns
                columns += 1
            }
        }
        // The trie of the strings (-1: no edge yet).
        var transitions = [Int32](repeating: -1, count: columns)
        var outputs: [[Int]] = [[]]
        for (string, id) in ids.sorted(by: { $0.value < $1.value }) {
            var state = 0
            for byte in string.utf8 {
                let slot = state * columns + column[Int(byte)]
                if transitions[slot] < 0 {
                    transitions[slot] = Int32(outputs.count)
                    transitions += [Int32](repeating: -1, count: columns)
                    outputs.append([])
                }
                state = Int(transitions[slot])
            }
            outputs[state].append(id)
        }
        // Breadth first: failure links, then every missing edge follows the failure link's edge.
        var failure = [Int](repeating: 0, count: outputs.count)
        var queue: [Int] = []
        for next in 0..<columns {
            if transitions[next] > 0 {
                queue.append(Int(transitions[next]))
            } else {
                transitions[next] = 0
            }
        }
        var head = 0
        while head < queue.count {
            let state = queue[head]
            head += 1
            outputs[state] += outputs[failure[state]]
            for next in 0..<columns {
                let slot = state * columns + next
                let fallback = transitions[failure[state] * columns + next]
                if transitions[slot] >= 0 {
                    failure[Int(transitions[slot])] = Int(fallback)
                    queue.append(Int(transitions[slot]))
                } else {
                    transitions[slot] = fallback
                }
            }
        }
        self.column = column
        self.columns = columns
        self.transitions = transitions
        var outputStart: [Int32] = [0]
        var outputIDs: [Int32] = []
        for ids in outputs {
            outputIDs += ids.map(Int32.init)
            outputStart.append(Int32(outputIDs.count))
        }
        self.outputStart = outputStart
        self.outputIDs = outputIDs
    }

    /// For each pattern, whether it can match `text`: the strings found mark the clauses they satisfy, so
    /// the work follows what the text holds, not the size of the clauses.
    func possible(in text: String) -> [Bool] {
        var present = [Bool](repeating: false, count: strings)
        var satisfied = [Bool](repeating: false, count: clauses)
        var text = text
        text.withUTF8 { bytes in
            transitions.withUnsafeBufferPointer { transitions in
                column.withUnsafeBufferPointer { column in
                    outputStart.withUnsafeBufferPointer { start in
                        outputIDs.withUnsafeBufferPointer { ids in
                            present.withUnsafeMutableBufferPointer { present in
                                var state = 0
                                for byte in bytes {
                                    state = Int(transitions[state &* columns &+ column[Int(byte)]])
                                    for index in Int(start[state])..<Int(start[state &+ 1]) {
                                        present[Int(ids[index])] = true
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        for string in present.indices where present[string] {
            for index in Int(clauseStart[string])..<Int(clauseStart[string + 1]) {
                satisfied[Int(clauseIDs[index])] = true
            }
        }
        return requirements.map { requirement in requirement?.allSatisfy { satisfied[$0] } ?? true }
    }
}
