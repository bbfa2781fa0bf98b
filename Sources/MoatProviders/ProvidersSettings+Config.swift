public import MoatCore
import MoatNet
import MoatVault

extension ProvidersSettings: ConfigSection {
    /// Reads `providers:`: a mapping from a provider's name to its settings. A section that is present
    /// replaces the default list (write `local:` in it to keep Ollama).
    public mutating func read(_ node: ConfigNode, path: String) throws(ConfigError) {
        guard case .mapping(let entries) = node.value else {
            if node.isNull { return }
            throw node.fail(path, "must be a mapping from a provider's name to its settings, e.g. local: {…}")
        }
        var read: [ProviderSettings] = []
        for (keyNode, value) in entries {
            guard case .scalar(let name, _) = keyNode.value, Self.isValidName(name) else {
                let text = if case .scalar(let name, _) = keyNode.value { ConfigNode.printable(name) } else { "" }
                throw keyNode.fail(
                    path + "." + text,
                    "a provider's name is lower-case letters, digits, '-' and '_', starting with a letter, "
                        + "at most 32 characters (for example local or openai)")
            }
            var provider =
                name == Self.defaultLocal.name
                ? Self.defaultLocal : ProviderSettings(name: name, baseURL: "", model: "")
            try provider.read(value, path: path + "." + name)
            read.append(provider)
        }
        guard !read.isEmpty else {
            throw node.fail(path, "lists no provider; leave the section out to use Ollama on 127.0.0.1:11434")
        }
        providers = read
    }

    static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, ("a"..."z").contains(first), name.utf8.count <= 32 else {
            return false
        }
        return name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("0"..."9").contains($0) || "-_".unicodeScalars.contains($0)
        }
    }
}

extension ProviderSettings {
    static let keys = [
        "kind", "base_url", "model", "api_key_secret", "stream", "timeouts", "max_tokens", "retries",
        "circuit_breaker", "allowed_principals", "daily_token_limit", "context_tokens",
    ]

    /// Reads one provider over its starting values; `base_url` (except for `kind: anthropic`) and
    /// `model` must end up set.
    mutating func read(_ node: ConfigNode, path: String) throws(ConfigError) {
        var baseURLNode: ConfigNode?
        for (key, value) in try node.mapping(path: path, allowed: Self.keys) {
            let keyPath = path + "." + key
            switch key {
            case "kind":
                kind = try value.enumeration(path: keyPath)
            case "base_url":
                baseURL = try value.string(path: keyPath)
                baseURLNode = value
            case "model":
                model = try value.string(path: keyPath)
                guard model.utf8.count <= 200, model.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7f })
                else {
                    throw value.fail(
                        keyPath, "must be a model name without spaces or control characters, e.g. qwen2.5:1.5b")
                }
            case "api_key_secret":
                apiKeySecret = try value.optionalString(path: keyPath)
                if let secret = apiKeySecret, !SecretName.isValid(secret) {
                    throw value.fail(
                        keyPath,
                        "\"\(ConfigNode.printable(secret))\" is not a vault secret name: upper-case letters, digits "
                            + "and '_', e.g. OPENAI_API_KEY (the NAME of the secret; never the key itself)")
                }
            case "stream":
                let text = try value.scalar(path: keyPath, expected: "true or false").text
                guard let flag = ["true": true, "false": false][text] else {
                    throw value.fail(keyPath, "must be true or false, not \"\(ConfigNode.printable(text))\"")
                }
                stream = flag
            case "max_tokens":
                maxTokens = try value.integer(
                    path: keyPath, range: 1...1_000_000, allowed: "a number of tokens from 1 to 1000000")
            case "context_tokens":
                contextTokens = try value.integer(
                    path: keyPath, range: 1024...10_000_000, allowed: "a number of tokens from 1024 to 10000000")
            case "retries":
                try retries.read(value, path: keyPath)
            case "circuit_breaker":
                try circuitBreaker.read(value, path: keyPath)
            case "allowed_principals":
                allowedPrincipals = try Self.principals(value, path: keyPath)
            case "daily_token_limit":
                dailyTokenLimit = try value.integer(
                    path: keyPath, range: 1...1_000_000_000_000, allowed: "a number of tokens per UTC day")
            default:
                try timeouts.read(value, path: keyPath)
            }
        }
        if baseURL.isEmpty, kind == .anthropic { baseURL = Self.anthropicBaseURL }
        if let baseURLNode, let problem = Self.baseURLProblem(baseURL, kind: kind) {
            throw baseURLNode.fail(path + ".base_url", problem)
        }
        guard !baseURL.isEmpty else {
            throw node.fail(path + ".base_url", "is required, e.g. base_url: http://127.0.0.1:8080/v1")
        }
        guard !model.isEmpty else { throw node.fail(path + ".model", "is required: the model name the server knows") }
        if apiKeySecret != nil, let problem = Self.cleartextKeyProblem(baseURL) {
            throw node.fail(path + ".api_key_secret", problem)
        }
    }

    /// A list of principal patterns (`[owner, contact:ID, channel:NAME, contacts, everyone]`).
    public static func principals(_ node: ConfigNode, path: String) throws(ConfigError) -> [PrincipalPattern] {
        var patterns: [PrincipalPattern] = []
        for (text, item) in try node.stringList(path: path) {
            guard let pattern = PrincipalPattern(text) else {
                throw item.fail(
                    path, "\"\(ConfigNode.printable(text))\" is not a principal: write \(PrincipalPattern.forms)")
            }
            patterns.append(pattern)
        }
        guard !patterns.isEmpty else {
            throw node.fail(path, "lists no one; leave it out for the default, or write [owner]")
        }
        return patterns
    }

    /// Why `text` cannot be a base URL, or nil.
    static func baseURLProblem(_ text: String, kind: Kind = .openai) -> String? {
        let url: FetchURL
        switch FetchURL.parse(text) {
        case .success(let parsed): url = parsed
        case .failure(let error): return "is not a usable URL: \(error.message)"
        }
        if url.userInfo != nil { return "must not hold credentials (user@host): put the key in the vault" }
        let suffix = kind == .anthropic ? "/v1/messages" : "/chat/completions"
        if url.pathAndQuery.contains("?") {
            return "must not have a query (?…): write the URL before \(suffix)"
        }
        if kind == .anthropic {
            let path = url.pathAndQuery.hasSuffix("/") ? String(url.pathAndQuery.dropLast()) : url.pathAndQuery
            guard path.hasSuffix("/v1/messages") || path.hasSuffix("/v1") else { return nil }
            return "is the URL before /v1/messages (e.g. https://api.anthropic.com); Moat adds that part"
        }
        if url.pathAndQuery.hasSuffix("/chat/completions") || url.pathAndQuery.hasSuffix("/chat/completions/") {
            return "is the URL before /chat/completions (e.g. http://127.0.0.1:11434/v1); Moat adds that part"
        }
        return nil
    }

    /// A key over plain http would cross the network readable by anyone on the path; on loopback it
    /// never leaves the machine.
    static func cleartextKeyProblem(_ text: String) -> String? {
        guard case .success(let url) = FetchURL.parse(text), url.scheme == "http" else { return nil }
        switch url.host {
        case .address(let address) where address.isLoopback: return nil
        case .name("localhost"): return nil
        default:
            return "an API key is only sent over https, or over http to a loopback address (127.0.0.1): "
                + "use an https base_url for \(url.origin)"
        }
    }
}

extension ProviderTimeouts {
    /// Reads `timeouts:` (whole seconds).
    mutating func read(_ node: ConfigNode, path: String) throws(ConfigError) {
        let keys = ["connect_seconds", "first_byte_seconds", "idle_seconds", "total_seconds"]
        for (key, value) in try node.mapping(path: path, allowed: keys) {
            let seconds = try value.integer(
                path: path + "." + key, range: 1...86400, allowed: "seconds from 1 to 86400")
            switch key {
            case "connect_seconds": connect = .seconds(seconds)
            case "first_byte_seconds": firstByte = .seconds(seconds)
            case "idle_seconds": idle = .seconds(seconds)
            default: total = .seconds(seconds)
            }
        }
    }
}

extension ProviderRetries {
    /// Reads `retries:`.
    mutating func read(_ node: ConfigNode, path: String) throws(ConfigError) {
        for (key, value) in try node.mapping(
            path: path, allowed: ["max_attempts", "base_delay_ms", "max_wait_seconds"])
        {
            let keyPath = path + "." + key
            switch key {
            case "max_attempts":
                maximumAttempts = try value.integer(
                    path: keyPath, range: 1...10, allowed: "attempts from 1 (never retry) to 10")
            case "base_delay_ms":
                baseDelay = .milliseconds(
                    try value.integer(path: keyPath, range: 1...60000, allowed: "milliseconds from 1 to 60000"))
            default:
                maximumWait = .seconds(
                    try value.integer(path: keyPath, range: 1...3600, allowed: "seconds from 1 to 3600"))
            }
        }
    }
}

extension CircuitBreakerSettings {
    /// Reads `circuit_breaker:`.
    mutating func read(_ node: ConfigNode, path: String) throws(ConfigError) {
        for (key, value) in try node.mapping(path: path, allowed: ["failures", "cool_down_seconds"]) {
            let keyPath = path + "." + key
            if key == "failures" {
                failureThreshold = try value.integer(
                    path: keyPath, range: 1...1000, allowed: "consecutive failures from 1 to 1000")
            } else {
                coolDown = .seconds(
                    try value.integer(path: keyPath, range: 1...86400, allowed: "seconds from 1 to 86400"))
            }
        }
    }
}
