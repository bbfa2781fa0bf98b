import MoatCore

/// What the built-in tools share: parameters declared once, from which the JSON Schema, the strict
/// argument check and the canonical form all follow.
protocol BuiltinTool: Tool {
    /// The parameters, in the order the schema lists them.
    var parameterList: [ToolParameter] { get }
}

extension BuiltinTool {
    public var parameters: String { ToolArguments.schema(parameterList) }

    /// Checks model output against the parameters.
    func checkedArguments(_ text: String) throws(ToolError) -> ToolArguments {
        try ToolArguments(text, tool: name, parameters: parameterList)
    }

    /// The arguments of a call to run, checked again: a call may come back from an approval, and a tool
    /// trusts nothing it did not check itself.
    func checkedArguments(of call: PreparedCall) throws(ToolError) -> ToolArguments {
        guard call.tool == name else {
            throw ToolError(.invalidArguments, "a call to \(call.tool) cannot be run by \(name)")
        }
        return try checkedArguments(call.arguments)
    }

    /// The prepared form of checked arguments: canonical JSON, the destination and a one-line summary
    /// with control characters removed and cut to 200 characters.
    func prepared(_ arguments: ToolArguments, destination: String, summary: String) -> PreparedCall {
        PreparedCall(
            tool: name,
            arguments: arguments.canonical,
            destination: destination,
            summary: PrintableText.excerpt(summary, limit: 200)
        )
    }
}
