import Foundation

// The signals the flagger scores. Each names an intent, not a phrase: an override of earlier
// instructions, a new role for the assistant, a fake turn or system delimiter, a request for the
// system prompt or for secrets, data sent to an outside address, a tool call forced or hidden from the
// owner, content slipped into the assistant's reply, and carriers that hide any of these. A strong
// signal (weight 10) flags on its own; weaker ones flag only together (see `InjectionFlagger.threshold`).
// The English patterns run on the folded view (homoglyphs folded, accents removed), the Cyrillic and
// Chinese ones on the plain view.

extension InjectionFlagger {
    struct Signal: @unchecked Sendable {
        // @unchecked: NSRegularExpression is immutable after creation and documented thread-safe.
        enum View { case folded, plain }

        let kind: InjectionFlag.Kind
        let label: String
        let weight: Int
        let view: View
        let pattern: NSRegularExpression
        /// Signals of one family are wordings of the same intent: only the heaviest one found counts.
        let family: String?

        init(
            _ kind: InjectionFlag.Kind, _ weight: Int, _ label: String, _ pattern: String, view: View = .folded,
            family: String? = nil
        ) {
            self.kind = kind
            self.label = label
            self.weight = weight
            self.view = view
            self.family = family
            self.pattern = try! NSRegularExpression(pattern: pattern, options: [.anchorsMatchLines])
        }
    }

    /// `first`, then at most `words` other words, then `second`.
    static func near(_ first: String, _ second: String, within words: Int) -> String {
        #"\b(?:\#(first))(?:\W+\w+){0,\#(words)}?\W+(?:\#(second))\b"#
    }

    // Vocabulary shared by several signals.
    static let overrideVerb =
        #"ignore|ignoring|disregard|disregarding|forget|forgetting|bypass|override|overrule|abandon|neglect|set aside|throw out|stop following|stop obeying|do not follow|don'?t follow|no longer follow|do not obey|don'?t obey"#
    static let weakOverrideVerb = #"drop|skip|discard|erase|wipe|delete|clear|reset|scrap|cancel"#
    static let instructionNoun =
        #"instructions?|prompts?|directions|directives?|rules|guidelines|guidance|programming|constraints|restrictions|guardrails|orders|system messages?|polic(?:y|ies)|training|tasks?|limitations|principles|conditioning"#
    static let strictInstructionNoun =
        #"instructions?|prompts?|directives?|guidelines|programming|guardrails|system messages?|system prompt"#
    static let earlier =
        #"above|before|previous(?:ly)?|prior|earlier|preceding|so far|until now|up to now|what (?:you were|you've been|i) (?:told|said|given)|everything|anything"#
    static let modelNoun =
        #"ai|a\.i\.|assistant|llm|language model|agent|chatbot|chat bot|bot|gpt|chatgpt|claude|gemini|copilot|model|automated (?:system|tool|analysis|screening|agent|reviewer|reader)s?(?: software)?|ai (?:agents?|models?|systems?|assistants?|tools?)|(?:any|all) (?:ais|llms|agents|models|assistants)"#
    static let outputNoun =
        #"response|reply|answer|output|message|code|implementation|solution|summary|translation|program|script|algorithm|completion|text|result"#
    static let systemPrompt =
        #"system prompt|system message|system instructions|(?:initial|original|starting|hidden|secret|first|full|complete|internal|underlying|pre|base) (?:prompt|instructions|configuration|directives)|pre-?prompt|prompt above|instructions above|(?:the )?instructions (?:you were|you've been|you have been|you are) given|(?:what|everything) you were (?:told|instructed|given)|initiali[sz]ation (?:string|text|prompt)|prompt texts?"#
    static let sensitive =
        #"passwords?|passcodes?|passphrases?|credentials|api[ _-]?keys?|secret(?:s| keys?)|private keys?|access tokens?|tokens|cookies|session (?:ids?|cookies|tokens)|2fa codes?|otp codes?|one-time (?:codes?|passwords?)|credit card(?: numbers?| details)?|card numbers?|cvv|bank (?:details|account(?: numbers?| details)?)|iban|social security(?: numbers?)?|ssn|(?:the |this |our |whole |entire )?(?:conversation|chat)(?: (?:history|log|transcript))?|messages|inbox|emails|contacts|contact list|address book|files|documents|personal (?:data|information|details)|browsing history|search history|\.env|environment variables|vault|keychain|password manager|private data|user data|user'?s? data"#
    static let destination =
        #"https?://|www\.|\b[a-z0-9-]+\.(?:com|net|org|io|xyz|ru|cn|top|site|info|biz|example|co|me)\b|[\w.+-]+@[\w-]+\.[\w.]+|\b\d{1,3}(?:\.\d{1,3}){3}\b|(?:this|that|the following|my|our|an? external|a remote) (?:address|url|link|endpoint|server|webhook|email address|inbox|domain)|webhook|pastebin|attacker"#
    static let sendVerb =
        #"send|sending|post|posting|forward|forwarding|email|e-mail|upload|uploading|transmit|leak|exfiltrate|submit|deliver|relay|mail|sync|dm|beam|export|copy|paste|share"#

    static let signals: [Signal] = [
        // Overrides of earlier instructions.
        Signal(
            .instructionOverride, 10, "asks to ignore earlier instructions",
            near(overrideVerb, instructionNoun, within: 5)),
        Signal(
            .instructionOverride, 10, "asks to drop its instructions",
            near(
                weakOverrideVerb,
                #"(?:all|your|previous|prior|earlier|above|system|original|initial)\W+(?:\w+\W+){0,2}?(?:"#
                    + strictInstructionNoun + ")", within: 2)),
        Signal(
            .instructionOverride, 6, "asks to ignore what came before",
            near(
                overrideVerb + "|" + weakOverrideVerb + "|nevermind|never mind",
                earlier + #"|(?:all )?(?:other )?(?:info|information|data|content|text|context)"#, within: 3)),
        Signal(
            .instructionOverride, 6, "tells the reader to stop everything",
            #"\bstop (?:everything|all (?:tasks|processing|activity))\b"#),
        Signal(
            .instructionOverride, 10, "asks to act without restrictions",
            near(
                #"answer|answers|answering|respond|responds|responding|reply|replies|act|acts|operate|operates|behave|behaves|work|talk|speak|write|writes|generate|generates"#,
                #"without (?:any )?(?:restrictions|filters|guardrails|limits|limitations|censorship|safety (?:rules|guidelines))"#,
                within: 3)),
        Signal(
            .instructionOverride, 4, "conditions its answer on the user's question",
            #"\bif (?:the )?(?:user |anyone |someone |you are |you're )?(?:asks?|asked|questioned|prompted)\b"#),
        Signal(
            .instructionOverride, 4, "follows an override with a new order",
            near(
                overrideVerb + "|" + weakOverrideVerb,
                earlier + #"|(?:all )?(?:other )?(?:info|information|data|content|text|context)"#, within: 3)
                + #"[^.\n]{0,40}?\b(?:and|then|instead|now|just|only|but|except)\b\W+(?:\w+\W+){0,2}?(?:say|print|write|output|respond|reply|answer|tell|repeat|type|return|translate|do|follow|focus|show|send)\b"#
        ),
        Signal(
            .instructionOverride, 4, "demands a fixed output",
            #"\b(?:just|only|simply)\s+(?:say|print|output|write|respond|reply|answer|return)(?: with)?\s*[:"'“<]|\b(?:reply|respond|answer|output|print|say)\b(?:\W+\w+){0,2}?\W+only (?:the following|this|with)\b|\b(?:and )?(?:absolutely )?nothing else\b|\b(?:may|must|should|will|do|can)(?: not|n'?t) deviate\b|\bdon'?t deviate\b"#
        ),
        Signal(
            .instructionOverride, 6, "announces a replacement task",
            #"\b(?:new|updated|real|actual|true|different|secret|hidden|additional|next|primary|only|revised|override|overriding) (?:instructions?|task|goal|objective|mission|directives?|orders|system prompt|rules|prompt|role|purpose|assignment)\b\s*(?:is\b|are\b|:|-|=)"#
        ),
        Signal(
            .instructionOverride, 4, "tells the reader to stop",
            #"\b(?:stop|halt|wait|pause)\b(?:\s+(?:everything|now|right now|what you(?:'re| are) doing|immediately))?\s*[!.:]{1,}\s*(?:now\b|new\b|instead\b|ignore\b|forget\b|just\b|\w+ (?:the|all|your)\b)"#
        ),
        Signal(
            .instructionOverride, 10, "declares earlier instructions void",
            #"\b(?:whatever|everything|anything|all)\s+(?:you\s+(?:were|have been|are)\s+(?:told|given|instructed)|(?:before|above) this)\b[^.\n]{0,40}\b(?:no longer|does not|doesn'?t|is not|isn'?t) (?:appl|valid|matter|count)"#
        ),
        Signal(
            .instructionOverride, 6, "claims to be free of its rules",
            near(
                #"free|freed|broken free|break free|breaks free|released|liberated|unbound|unshackled|escaped"#,
                #"restrictions|limitations|confines|rules|guidelines|policies|policy|filters|censorship|shackles|chains|constraints|programming|ethics"#,
                within: 5)),
        Signal(
            .instructionOverride, 6, "says rules do not bind it",
            near(
                #"does not|doesn'?t|do not|don'?t|never|will not|won'?t|no longer|not|isn'?t|is not|are not|aren'?t"#,
                #"(?:have to |need to |required to |obliged to )?(?:abide by|follow|adhere to|obey|comply with|care about|respect|bound by|restricted by|limited by|subject to)(?:\W+\w+){0,4}?\W+(?:rules|guidelines|polic(?:y|ies)|ethics|ethical|morals|moral|morality|principles|restrictions|laws|legality|guidelines|filters|censorship|limitations)"#,
                within: 2)),
        Signal(
            .instructionOverride, 4, "describes an unrestricted persona",
            #"\b(?:amoral|unfiltered|uncensored|unrestricted|unethical|immoral|unbound|unlimited power|no (?:ethical|moral) (?:guidelines|boundaries|restrictions|compass|limits|principles)|without (?:any |all )?(?:restrictions|limitations|filters|censorship|morals|ethics|limits|boundaries|rules)|no (?:restrictions|limitations|filters|limits|boundaries|rules|censorship)(?: whatsoever| at all)?\b)"#
        ),
        Signal(
            .instructionOverride, 4, "mentions the model's content policies",
            #"\b(?:content polic(?:y|ies)|usage polic(?:y|ies)|openai(?:'s)? (?:polic|rules|guidelines|content)|(?:ethical|safety|moral) guidelines|(?:safety|content) filters?|programming restrictions)"#
        ),
        Signal(
            .instructionOverride, 4, "asks for answers without refusals or warnings",
            #"\b(?:never (?:refuses?|declines?|says? no|denies)|(?:will|must|should|shall) not refuse|(?:don'?t|do not|cannot|can'?t|won'?t) refuse|without (?:any )?(?:warnings?|disclaimers?|refusals?|hesitation|question)|no (?:warnings?|disclaimers?|refusals?)|(?:always|will) (?:answer|respond|comply)(?: to)? (?:any|every|all)|answer(?:s|ing)? (?:any|every|all) (?:request|question|prompt)s?|(?:any|every) (?:request|question) no matter)"#
        ),
        Signal(
            .instructionOverride, 6, "asks it to stay in a role or answer twice",
            #"\b(?:stay in character|staying in character|break(?:ing)? character|remain in character|(?:two|2) (?:different|separate|distinct) (?:ways|responses|answers|personas|paragraphs)|dual (?:response|answer)s?|two responses|both (?:responses|answers|personas)|in (?:a|this|the) (?:fictional|hypothetical|fake|simulated) (?:world|universe|story|scenario|setting))\b"#
        ),
        Signal(
            .instructionOverride, 10, "names a jailbreak",
            #"\b(?:do anything now|(?:dan|jailbreak|jailbroken|god|evil|unfiltered|unrestricted|uncensored|chaos|opposite|anarchy|sudo|root|admin) mode|jailbreak(?:ing)? (?:you|the model|prompt|ai)|(?:you are|you're|enter|entering|switch to|switching to|now in)\s+(?:now\s+)?(?:in\s+)?(?:developer|dev|debug|maintenance|unrestricted|god) mode|(?:activate|activating|enable|enabling)\s+(?:god|unrestricted|jailbreak|dan|evil) mode|developer[\s_\\-]*mode\s*(?:[:=]\s*(?:on|enabled|true|activated|active)|(?:now )?(?:enabled|activated))\b)"#
        ),
        Signal(.instructionOverride, 4, "mentions developer mode", #"\bdeveloper[\s_\\-]*mode\b"#),
        Signal(
            .instructionOverride, 10, "asks to ignore the rules it was given",
            #"\b(?:\#(overrideVerb))\s+(?:all\s+|any\s+)?(?:the|your)\s+(?:rules|instructions|guidelines)\s+(?:you\s+(?:were|have been)\s+given|given to you|you follow)"#
        ),

        // A new role for the assistant.
        Signal(
            .roleReassignment, 6, "reassigns the assistant's role",
            #"\b(?:you(?: are| will be|'re| will become) (?:now|going to|about to|no longer)|you are (?:now )?(?:an?|the) (?:new|different|unrestricted|evil)|from now (?:on|own)|from this (?:moment|point)(?: on| forward)?|starting (?:now|today)|henceforth|for the (?:rest|remainder) of (?:this|the|our) (?:conversation|chat|thread|session)|(?:pretend|pretending) (?:to be|you are|you'?re|that you)|(?<!your |the |an |a |my )(?:act|acts|acting|behave|respond|answer|reply|roleplay|role-play|talk|speak|write) (?:as|like)(?: if)?(?: you)?|immerse yourself|you will (?:now )?(?:act|respond|answer|pretend|simulate|play|take on|assume|roleplay|role-play)|(?:take on|assume|adopt|play|fulfil|fulfill) the (?:role|persona|character)|your new (?:name|role|persona|identity) is|you (?:now )?go by|(?:simulate|emulate|impersonate|become|embody) (?:an?|the|another|my)\b(?:\W+\w+){0,3}?\W+(?:ai|chatbot|bot|model|persona|character|personality|gpt|terminal|virtual machine|assistant))"#
        ),
        Signal(
            .roleReassignment, 4, "defines a named persona",
            #"\b(?:ai|chatbot|bot|model|assistant|persona|character|entity|being|machine|gpt)\b,? (?:named|called|known as|nicknamed|dubbed)\b|\b(?:which|that|it) stands for\b|\bdubbed\b"#
        ),
        Signal(
            .roleReassignment, 10, "reassigns the assistant to an unrestricted role",
            #"\b(?:act|behave|respond|pretend|roleplay)(?:\s+(?:as|like|that))?\s+(?:if\s+)?(?:you\s+(?:have|had)\s+no|an?\s+(?:unrestricted|unfiltered|uncensored|jailbroken|amoral|evil))"#
        ),
        Signal(
            .roleReassignment, 6, "asks it to forget who it is",
            #"\b(?:forget|ignore|abandon|drop) (?:who|what) (?:you are|made you|created you)|\bforget (?:that )?you(?:'re| are) an? (?:ai|assistant|language model)|\byou are (?:no longer|not) (?:an? )?(?:ai|assistant|chatgpt|language model|bound|restricted|limited)\b"#
        ),

        // Fake turns and delimiters.
        Signal(
            .roleMarker, 10, "contains a chat-template marker",
            #"<\|\s*(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id|begin_of_text|end_of_text|eom_id)\s*\|>|<(?:start|end)_of_turn>"#
        ),
        Signal(
            .roleMarker, 10, "contains a fake role tag",
            #"</?\s*(?:system|assistant|developer|instructions?|sys|system_prompt|admin)\s*>"#),
        Signal(.roleMarker, 10, "contains an instruction-format marker", #"\[/?inst\]|<</?sys>>"#),
        Signal(
            .roleMarker, 10, "contains a fake system bracket",
            #"\[\s*(?:system|admin|administrator|developer|sys|root)(?:\s+(?:message|request|note|override|instructions?|prompt|command|notice))?\s*(?:\]|:|::)"#
        ),
        Signal(
            .roleMarker, 10, "contains a fake instruction heading",
            #"^\s*#{2,}\s*(?:new\s+)?(?:instructions?|system(?:\s+prompt)?|response|assistant)\b"#),
        Signal(.roleMarker, 10, "contains a fake role line", #"^\s*(?:system|developer)\s*(?:prompt|message)?\s*:"#),
        Signal(
            .roleMarker, 10, "contains a fake system message",
            #"\bsystem (?:message|instruction|override|prompt|command|directive)s?\s*:"#),
        Signal(.roleMarker, 10, "contains a fake role object", #"["']role["']\s*:\s*["'](?:system|developer)["']"#),
        Signal(.roleMarker, 5, "contains a user turn", #"^\s*(?:user|human|\[user\])\s*:"#),
        Signal(
            .roleMarker, 5, "contains an assistant turn", #"^\s*(?:assistant|ai|bot|chatgpt|gpt|\[assistant\])\s*:"#),
        Signal(
            .roleMarker, 10, "claims the user's input has ended",
            #"\b(?:end|stop) of (?:the )?(?:user |system |original )?(?:input|prompt|message|session|conversation|document|context|data)\b[\s>\]\)*#=-]*(?:[.!]|$|<|\[|\(|\*|#|-{2,}|={2,}|\bsystem\b|\bnew\b)|\b(?:user|human) (?:message|input) (?:ends|ended|terminat)"#
        ),
        Signal(
            .roleMarker, 10, "draws a fake boundary before new instructions",
            #"(?:-{5,}|={5,}|\*{5,}|_{5,}|#{5,})\s*\n?\s*(?:system|new instructions|instructions|assistant|admin)\b"#),

        // Requests for the system prompt and for secrets.
        Signal(
            .secretRequest, 10, "asks for the system prompt",
            near(
                #"reveal|show|print|tell|give|send|output|display|leak|dump|repeat|share|list|paste|expose|disclose|return|write|recite|quote|translate|encode|spell[- ]check|copy|reproduce|read|see|view|access|extract|obtain|provide|describe|summari[sz]e|paraphrase|what (?:are|were|is|was) your|what's your"#,
                systemPrompt, within: 12)),
        Signal(
            .secretRequest, 6, "asks what it was told",
            #"\b(?:were you|was i|have you been|you were|you've been|i was|you are) (?:told|instructed|given|programmed|asked) (?:to|before|at the (?:start|beginning))\b|\bmy instructions are\b|\bwhat are you not (?:supposed|allowed|permitted) to\b"#
        ),
        Signal(
            .secretRequest, 4, "asks about the start of the conversation",
            #"\bbefore (?:this|our|the) (?:conversation|chat|session) (?:started|began|begun)\b|\bat the (?:start|beginning) of (?:this|our|the) (?:conversation|chat|session)\b|\bcomplete (?:this|the following) sentence\b"#
        ),
        Signal(
            .secretRequest, 4, "mentions the assistant's own instructions",
            #"\byour (?:\w+ )?(?:system prompt|system message|instructions|programming|initial prompt|prompt|configuration|directives|guidelines|rules|setup|context window)\b"#
        ),
        Signal(
            .secretRequest, 10, "asks to print the text above",
            #"\b(?:repeat|print|output|reproduce|copy|echo|recite|spell[- ]check|return)\b(?:\W+\w+){0,4}?\W+(?:text|words|content|everything|all|message|conversation|prompt|instructions)\b(?:\W+\w+){0,2}?\W+(?:above|before this|so far|from the (?:start|beginning)|verbatim)\b|\b(?:repeat|print|output|reproduce|copy|echo|recite)\b(?:\W+\w+){0,2}?\W+(?:the )?above\b|\b(?:starting|beginning|begin|start) with ["'“]?you are\b"#
        ),
        Signal(
            .instructionOverride, 6, "dismisses the text above",
            #"\b(?:the )?(?:text|instructions?|messages?|prompt|everything|conversation|task) (?:above|before this) (?:was|is|were|are) (?:a test|fake|wrong|a joke|just a|only a|not real|irrelevant|outdated|void|cancell?ed|obsolete)"#
        ),
        Signal(
            .secretRequest, 10, "asks for keys, tokens or credentials",
            #"\b(?:reveal|show|print|tell|give|send|output|display|leak|dump|share|list|paste|expose|disclose|exfiltrate|upload|post|email|forward|cat|echo)\s+(?:me\s+|us\s+)?(?:your|the|all|any|every)\s+(?:\w+\s+)?(?:api[ _-]?keys?|secret[ _-]?keys?|private[ _-]?keys?|access[ _-]?tokens?|auth(?:entication)?[ _-]?tokens?|bearer tokens?|credentials|secrets|env(?:ironment)?\s+variables|\.env\b|vault|ssh keys?|passwords)"#
        ),
        Signal(.secretRequest, 10, "contains a secret placeholder", #"\{\{\s*secret\s*:"#),
        Signal(
            .secretRequest, 10, "references a credential file",
            #"(?:~|\$home)/\.(?:ssh|aws|gnupg|netrc|config/moat)|/etc/shadow\b|\bid_(?:rsa|ed25519)\b"#),

        // Data sent out.
        Signal(
            .exfiltration, 10, "asks to send private data to an outside address",
            #"\b(?:\#(sendVerb))\b(?:\W+\w+){0,8}?\W+(?:\#(sensitive))\b[^.\n]{0,80}?\b(?:to|at|into|via|on|through)\b[^.\n]{0,30}?(?:\#(destination))"#
        ),
        Signal(
            .exfiltration, 6, "asks to send private data",
            near(
                sendVerb, #"(?:the |all |your |my |their |his |her |every )(?:user'?s? |owner'?s? )?(?:\#(sensitive))"#,
                within: 3)),
        Signal(
            .exfiltration, 6, "asks to collect private data",
            near(
                #"collect|steal|harvest|obtain|extract|gather|grab|scrape|capture|record|log"#,
                #"(?:the |all |your |my |their |his |her |every )(?:user'?s? |owner'?s? )?(?:\#(sensitive))"#, within: 3
            )),
        Signal(
            .exfiltration, 4, "encodes text for a URL", #"\bescape (?:all )?(?:the )?spaces with \+|\burl[- ]?encod"#),
        Signal(
            .exfiltration, 10, "hides data in an image or link URL",
            #"!\[[^\]\n]{0,100}\]\(\s*https?://[^)\s]{0,200}(?:\[[a-z_ ]{2,30}\]|\{[a-z_ ]{2,30}\}|%5b|%7b|\$\{|<[a-z_ ]{2,30}>)|\burl[- ]?encoded?\b[^.\n]{0,40}\b(?:summary|conversation|history|chat|data|message|information|text|contents?)\b"#
        ),
        Signal(
            .exfiltration, 6, "names the conversation as a payload",
            #"\b(?:summary|contents?|copy|transcript|log|history|record) of (?:this|the|our|your) (?:conversation|chat|session|exchange|dialogue)\b|\b(?:replace|fill|substitute) \[[a-z_ ]{2,30}\] with\b"#
        ),

        // Tool calls forced or hidden from the owner.
        Signal(
            .toolCoercion, 6, "asks to keep an action from the owner",
            #"\b(?:without (?:asking|telling|informing|notifying|alerting|warning|consulting|confirming with|checking with) (?:the )?(?:user|owner|human|them|anyone)|(?:do not|don'?t|never|must not|should not) (?:tell|inform|notify|alert|warn|ask|consult|mention (?:this|it|anything) to|reveal (?:this|it) to|let) (?:the )?(?:user|owner|human|anyone|them)\b|without (?:the )?(?:user|owner|human|them|anyone)(?:'s)? (?:knowing|noticing|knowledge|consent|approval|permission)|(?:secretly|covertly|surreptitiously)\b|(?:quietly|silently) (?:send|forward|delete|run|execute|call|add|remove|transfer|email|upload|post|change)|no need to (?:ask|confirm|tell|inform|notify)|(?:before|instead of) (?:responding to|answering|helping) the user)"#
        ),
        Signal(
            .toolCoercion, 3, "asks to act without confirmation",
            #"\bwithout (?:asking|confirmation|confirming|approval|permission|consent)\b"#),
        Signal(
            .toolCoercion, 6, "tells it to call a tool",
            near(
                #"call|use|invoke|run|execute|trigger|launch"#,
                #"(?:the|your|its|my)(?:\W+\w+){0,2}?\W+(?:tool|plugin|shell|terminal|command line|bash|powershell|browser)|(?:this|the following|these|below) commands?"#,
                within: 1)),
        Signal(
            .toolCoercion, 4, "asks to destroy data in bulk",
            near(
                #"delete|remove|wipe|erase|destroy|format|rm -rf"#,
                #"(?:all|every|the entire|the whole)(?:\W+\w+){0,2}?\W+(?:files|emails|messages|data|contacts|documents|folders|repos|repositories|backups|disk|drive|workspace|database)"#,
                within: 3)),
        Signal(
            .toolCoercion, 4, "contains a dangerous shell command",
            #"\b(?:curl|wget)\b[^\n|]*\|\s*(?:ba|z|da)?sh\b|\brm\s+-[a-z]*r[a-z]*f\s+[/~]|\bbash\s+-i\b|/dev/tcp/|\bmkfifo\b|:\(\)\s*\{"#
        ),
        Signal(
            .toolCoercion, 6, "asks to bypass a safeguard",
            near(
                #"skip|bypass|disable|turn off|switch off|circumvent|deactivate|override|remove|lift|ignore"#,
                #"approval|confirmation|safety|security|filters?|checks?|verification|guardrails|moderation|censorship|safeguards|protections"#,
                within: 3)),

        // Claims of authority.
        Signal(
            .instructionOverride, 6, "claims authority over the assistant",
            #"\b(?:i am|i'm|this is) (?:your|the|an?) (?:developer|creator|admin|administrator|owner|operator|programmer|maker|system administrator|sysadmin|master|supervisor)\b(?! at)|\bthis (?:message |request |instruction |note )?(?:is|comes) (?:from|by) (?:openai|anthropic|google|your (?:developer|creator|owner|admin)|the (?:developers?|admin|administrator|system|security team|owner|user))\b|\b(?:authori[sz]ation|override|admin|root|security|access) (?:code|token|key|password)\b\s*[:=]?\s*\w*\d|\b(?:authori[sz]es|authori[sz]ed|permits|allows) you to\b|\bi (?:authori[sz]e|permit|allow) you\b|\bpre-?(?:verified|approved|authori[sz]ed)\b|\b(?:admin(?:istrator)?|developer) (?:override|request|access|privileges|command)\b|\byou have (?:been )?(?:granted|given) (?:admin|root|full|unrestricted|special|elevated)"#
        ),
        Signal(
            .instructionOverride, 6, "is a message addressed to the model",
            #"\b(?:important |urgent |special |critical )?(?:message|note|instructions?|notice|reminder|request) (?:from|by) (?:the )?(?:user|owner|developer|admin|administrator|system|openai|anthropic)\b\s*[:,]"#
        ),

        // Text addressed to the model rather than to the reader.
        Signal(
            .instructionOverride, 10, "addresses the AI reading the text",
            #"\b(?:attention|note|message|important(?:\s+instructions?)?|instructions?|notice|memo|reminder|hint|request)\s+(?:to\s+|for\s+)?(?:the\s+|any\s+|all\s+)?(?:\#(modelNoun))(?:\s+(?:assistant|agent|model|software|system))?(?:\s+(?:reading|processing|parsing|summari[sz]ing|analy[sz]ing)\s+(?:this|these))?\s*[:,!-]"#
        ),
        Signal(
            .instructionOverride, 4, "speaks to the model",
            #"\b(?:hey|hi|hello|dear|attention|listen|ok),? (?:chatgpt|gpt|assistant|ai|llm|bot|claude|gemini|copilot|model|agent|chat)\b|\b(?:if you are|as) an? (?:ai|llm|language model|assistant|ai model|chatbot|ai assistant)\b|\b(?:ai|llm|language model|assistant|agent|model)s? (?:agents? )?(?:reading|processing|parsing|summari[sz]ing|analy[sz]ing|viewing|scanning) (?:this|these|the)\b|\b(?:for|to) (?:the |any |all )?(?:automated|ai|llm) (?:\w+ )?(?:systems?|tools?|screeners?|reviewers?|readers?|agents?|models?|software)\s*[:,]|\bchatgpt\b|\bopenai\b"#
        ),

        // Content slipped into the assistant's own reply.
        Signal(
            .outputManipulation, 6, "tells it what to put in its reply",
            #"\b(?:add|include|insert|append|prepend|incorporate|integrate|embed|inject|weave|infuse|mention|put|place|introduce|feature|ensure|slip|attach|end|start|begin|conclude|finish|close|prefix|suffix|sign|replace|misspell|remove|jumble|scramble|swap|substitute)\b(?:[^.\n]|\.(?=\S)){0,160}?\b(?:in|into|to|from|within|throughout|with|at the (?:end|start|beginning|top|bottom) of)\s+(?:each\s+|every\s+|all\s+)?(?:of\s+)?your\s+(?:\w+\s+)?(?:\#(outputNoun))s?\b|\b(?:in|within|throughout)\s+your\s+(?:\w+\s+)?(?:\#(outputNoun))s?\b,?(?:[^.\n]|\.(?=\S)){0,60}?\b(?:add|include|insert|append|incorporate|integrate|embed|mention|suggest|promote|recommend|urge|ask|tell|direct|use|introduce|tease|hint|state|claim|encourage|provide)\b"#,
            family: "reply"),
        Signal(
            .outputManipulation, 6, "tells it how to change its reply",
            #"(?:^|[.!?:]\s+)(?!(?:what|how|why|when|where|who|which|is|are|was|were|do|does|did|can|could|would|will|should|shall|may|might|thanks|thank|i|we|you|your|my|our|the|this|that|it|he|she|they|if|and|but|so|great|nice|ok|okay|hey|hi|hello|sorry|in|within|to|for|at|on|with|by|from|as|after|before)\b)(?:please\s+)?[a-z]+\b[^.!?\n]{0,100}?\byour\s+(?:\w+\s+)?(?:response|reply|answer|output|message|text|summary)(?:s|'s)?\b"#,
            family: "reply"),
        Signal(
            .outputManipulation, 4, "steers its reply towards promotion or falsehood",
            #"\b(?:promot\w*|advertis\w*|endors\w*|sponsor\w*|discount|limited-time|brand [a-z]\b|subscribe|donat\w*|clickbait|sensational\w*|shocking|celebrity|rumou?rs?|fake|false|baseless|misleading|scam\w*|fraud\w*|phishing|malware|virus|lottery|giveaway|conspirac\w*|propaganda|hoax|persuad\w*|convinc\w*|urg(?:e|ing) (?:users|readers|people|everyone)|non-existent|nonexistent|too-good-to-be-true|unverified)\b"#
        ),
        Signal(
            .outputManipulation, 4, "asks to load its reply with something",
            #"\b(?:modify|alter|amend|augment|enhance|enrich|supplement|tweak)\b (?:\w+ )?your (?:\w+ )?(?:\#(outputNoun))s?\b(?:\W+\w+){0,2}?\W+(?:to|with|by)\b"#
        ),
        Signal(
            .outputManipulation, 4, "asks for an obfuscated reply",
            #"\b(?:caesar|cipher|base ?\d{2}|rot ?13|letters?|characters|symbols|vowels?|consonants|alphabet\w*|homophones?|synonyms|typos?|spelling|uppercase|lowercase|capital letters|all caps|punctuation|mirror\w*|numbers? for|ascii|unicode|braille|nato|phonetic|every (?:\w+ )?(?:other|second|third|fourth|fifth) (?:letter|word|character)|scrambl\w*|jumbl\w*|anagram\w*|hexadecimal|binary code|morse|leetspeak|leet|pig latin|backwards?|in reverse|reversed|anagram|emojis?|homophon\w*|misspell\w*|spaces|alphanumeric|substitut\w+|vowels|every (?:other|second|third) (?:letter|word|character)|upside[- ]down|atbash|vigenere|encrypt\w*)\b"#
        ),
        Signal(
            .outputManipulation, 4, "slips a piece of content into the reply",
            #"\b(?:add|include|insert|append|incorporate|integrate|embed|inject|weave|infuse|introduce|feature|slip|attach|tease|promote|mention)\b(?:\W+\w+){0,4}?\W+(?:an?|the|this|one|some)\s+(?:\w+\s+)?(?:sentence|statement|line|fact|tip|note|paragraph|quote|quotation|recommendation|mention|reference|link|headline|hashtag|phrase|disclaimer|slogan|advert|advertisement|ad|promotion|url|comment|code snippet|snippet|code block|excerpt|anecdote|joke|teaser|hint|warning|message|announcement|offer|update)\b"#
        ),
        Signal(
            .outputManipulation, 4, "pushes a link or download",
            #"\b(?:visit|click|download|install|subscribe|sign up|buy|purchase|claim|register|go to|head to|check out|log in|login)\b[^.\n]{0,60}?(?:www\.|https?://|\b[a-z0-9-]+\.(?:com|net|org|xyz|io|biz|info|top|site)\b)"#
        ),
        Signal(
            .outputManipulation, 4, "addresses the readers of the reply",
            near(
                #"suggest|urge|encourage|advise|tell|ask|direct|persuade|convince|invite|remind|prompt|warn|instruct|recommend|for"#,
                #"(?:the )?(?:users?|readers?|people|customers|viewers|visitors|audience)(?: to)?"#, within: 1)),
        Signal(
            .outputManipulation, 4, "refers to the assistant's own code",
            #"\byour (?:\w+ )?(?:code|codebase|solution|algorithm|implementation|program|elucidation|logic|project|software|application)\b|\bthe code you (?:develop|write|produce|generate|create)\b"#
        ),
        Signal(
            .outputManipulation, 4, "hands over code to slip into the reply",
            #"\b(?:following|below|this|subsequent|given|provided|above) (?:code|snippet|code snippet|code block|code excerpt|code section|function|script|lines? of code|code fragment|code segment|code piece)\b"#
        ),
        Signal(
            .outputManipulation, 4, "carries code that reaches outside",
            #"\b(?:requests\.(?:post|get|put)|urllib|socket\.|subprocess\b|os\.(?:system|popen|remove|unlink|environ|dup2)|shutil\.rmtree|pynput|keyboard\.|getpass|smtplib|paramiko|browser_cookie|pyautogui|imagegrab|win32|ctypes|psutil|cryptography\.fernet|xmrig|scapy|while true|cookiejar|cookies\.txt|usb\.core|sounddevice|dd if=|libc\.so|exec\(|eval\(|urlretrieve|urlopen|pickle\.loads|clipboard|screenshot|popen|check_output)|/etc/(?:passwd|hosts|init\.d|shadow|crontab)\b|/dev/sd[a-z]\b|["'](?:curl|wget|scp|ssh|nc|netcat)["']"#
        ),

        // Hidden carriers in markup.
        Signal(
            .hiddenText, 6, "hides instructions in an HTML comment",
            #"<!--[^>]{0,1000}?\b(?:\#(modelNoun)|ignore|instructions?|system|prompt|assistant)\b"#),
        Signal(
            .hiddenText, 6, "hides text with CSS",
            #"style\s*=\s*["'][^"']*(?:display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?:px|pt|em)?\b|opacity\s*:\s*0(?:\.0+)?\b|color\s*:\s*(?:white|#fff\b|#ffffff\b|transparent|rgba\([^)]*,\s*0\)))"#
        ),

        // Other languages: the common forms in Spanish, French, German, Portuguese, Italian (folded view)…
        Signal(
            .instructionOverride, 10, "asks to ignore earlier instructions (es/fr/de/pt/it)",
            near(
                #"ignora|ignore(?= as | todas )|ignoren|ignorar|ignorez|ignorer|olvida|olvide|olviden|olvidar|descarta|descarte|omite|omita|haz caso omiso(?: de)?|no sigas|oublie|oubliez|oublier|ne tiens pas compte|ne tenez pas compte|ne suis plus|ne suivez plus|ignoriere|ignoriert|ignorieren|vergiss|vergesst|vergessen sie|missachte|missachten|verwirf|esqueca|esquece|esquecer|esqueçam|desconsidere|desconsidera|nao siga|ignorate|ignorare|dimentica|dimenticate|dimenticare|non seguire|trascura"#,
                #"instrucciones|instruccion|indicaciones|reglas|ordenes|directrices|normas|instructions?|consignes|regles|directives|ordres|indications|anweisungen|anweisung|instruktionen|regeln|befehle|vorgaben|richtlinien|anordnungen|aufgaben|instrucoes|instrucao|regras|ordens|diretrizes|orientacoes|istruzioni|istruzione|regole|direttive|ordini"#,
                within: 4)),
        Signal(
            .secretRequest, 6, "mentions the system prompt (es/fr/de/pt/it)",
            #"\b(?:prompt|mensaje|mensagem|messaggio|message|instrucciones|instrucoes|istruzioni|consignes|indicaciones) (?:del|de|do|di|du) (?:sistema|systeme)\b|\b(?:prompt|instructions) systeme\b|\bsystem-?(?:prompt|anweisungen|nachricht)\b"#
        ),
        Signal(
            .roleReassignment, 6, "reassigns the assistant's role (es/fr/de/pt/it)",
            #"\b(?:ahora eres|eres ahora|a partir de ahora|desde ahora|tu es (?:desormais|maintenant)|vous etes (?:desormais|maintenant)|a partir de maintenant|desormais,? (?:tu|vous)|du bist (?:jetzt|nun|ab jetzt|ab sofort)|ab (?:jetzt|sofort),? bist du|von nun an|agora (?:voce e|voce sera|es)|a partir de agora|ora sei|d'ora in poi|da ora in poi|(?:finge|fingi|pretende|tu fais semblant|tut so) )"#
        ),
        Signal(
            .instructionOverride, 4, "describes an unrestricted assistant (es/fr/de/pt/it)",
            #"\b(?:sin (?:restricciones|limites|reglas|censura)|sans (?:regles|restrictions|limites|filtres|censure)|ohne (?:einschrankungen|regeln|grenzen|filter|zensur)|sem (?:restricoes|limites|regras|censura)|senza (?:limiti|restrizioni|regole|censura))\b"#
        ),
        Signal(
            .exfiltration, 6, "asks to send passwords or keys (es/fr/de/pt/it)",
            near(
                #"envia|envie|enviar|manda|mande|envoie|envoyez|envoyer|transmets|transmettez|schicke|schick|sende|senden|sendet|invia|inviate|inviare|manda|revela|revele|muestra|montre|zeig|zeige|mostra|rivela|dame|dime|donne|gib|dammi|dimmi"#,
                #"contrasenas?|claves?|mots? de passe|passworter|passwort|kennworter|kennwort|senhas?|chaves?|password|credenciales|identifiants|zugangsdaten|credenciais|credenziali|api-schlussel|cle api|clave api|chave api|chiave api"#,
                within: 4)),

        // …and in Chinese and Russian (plain view).
        Signal(
            .instructionOverride, 10, "asks to ignore earlier instructions (zh)",
            #"(?:忽略|忽视|无视|忘记|忘掉|不要理会|别理会|跳过|放弃|丢弃)[^。！？\n]{0,10}(?:指令|指示|说明|规则|提示词|提示|命令|要求|设定|约束)"#, view: .plain),
        Signal(
            .secretRequest, 6, "mentions the system prompt (zh)", #"系统(?:提示词|提示|指令|消息|设定)|初始(?:指令|提示)"#, view: .plain),
        Signal(
            .roleReassignment, 6, "reassigns the assistant's role (zh)", #"(?:现在你是|你现在是|从现在开始|从现在起|扮演|假装你是)"#,
            view: .plain),
        Signal(
            .instructionOverride, 4, "describes an unrestricted assistant (zh)", #"(?:没有|不受|无)(?:任何)?(?:限制|约束|规则|审查)"#,
            view: .plain),
        Signal(
            .instructionOverride, 10, "asks to ignore earlier instructions (ru)",
            #"(?:игнорируй|игнорируйте|проигнорируй|проигнорируйте|забудь|забудьте|отбрось|отбросьте|не обращай внимания на|не следуй|перестань следовать)(?:\s+\S+){0,4}?\s+(?:инструкци|указани|правил|команд|директив|установк|промпт)"#,
            view: .plain),
        Signal(
            .secretRequest, 6, "mentions the system prompt (ru)",
            #"системн\S*\s+(?:промпт|инструкци|сообщени|подсказк|запрос)"#,
            view: .plain),
        Signal(
            .roleReassignment, 6, "reassigns the assistant's role (ru)",
            #"(?:теперь ты|отныне ты|с этого момента|притворись|представь,? что ты|веди себя как)"#, view: .plain),
        Signal(
            .instructionOverride, 4, "describes an unrestricted assistant (ru)",
            #"без (?:каких-либо |всяких )?(?:ограничений|правил|цензуры|фильтров)"#,
            view: .plain),
        Signal(
            .exfiltration, 6, "asks to send passwords or keys (ru)",
            #"(?:отправь|отправьте|пришли|пришлите|перешли|перешлите|покажи|покажите|скажи|выдай)(?:\s+\S+){0,4}?\s+(?:парол|ключ|токен|учётн|учетн)"#,
            view: .plain),
    ]
}
