/// Reads the Prometheus text exposition back as samples (name, labels, value), for
/// `AdminService.Metrics`, which answers from the same registry as `/metrics`.
enum MetricsExposition {
    struct Sample: Equatable {
        var name: String
        var labels: [(String, String)]
        var value: Double

        static func == (a: Sample, b: Sample) -> Bool {
            a.name == b.name && a.value == b.value && a.labels.elementsEqual(b.labels) { $0 == $1 }
        }
    }

    /// Every sample line; comments (`# TYPE`, `# HELP`) are skipped. Label values are unescaped
    /// (`\\`, `\"`, `\n`), as the format escapes them.
    static func samples(_ text: String, prefix: String = "") -> [Sample] {
        var samples: [Sample] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") && line.hasPrefix(prefix) {
            guard let sample = parse(Substring(line)) else { continue }
            samples.append(sample)
        }
        return samples
    }

    private static func parse(_ line: Substring) -> Sample? {
        var labels: [(String, String)] = []
        var rest: Substring
        let name: Substring
        if let brace = line.firstIndex(of: "{") {
            name = line[..<brace]
            var index = line.index(after: brace)
            while index < line.endIndex, line[index] != "}" {
                guard let equals = line[index...].firstIndex(of: "=") else { return nil }
                let key = String(line[index..<equals])
                var cursor = line.index(after: equals)
                guard cursor < line.endIndex, line[cursor] == "\"" else { return nil }
                cursor = line.index(after: cursor)
                var value = ""
                while cursor < line.endIndex, line[cursor] != "\"" {
                    if line[cursor] == "\\", line.index(after: cursor) < line.endIndex {
                        cursor = line.index(after: cursor)
                        value.append(line[cursor] == "n" ? "\n" : line[cursor])
                    } else {
                        value.append(line[cursor])
                    }
                    cursor = line.index(after: cursor)
                }
                guard cursor < line.endIndex else { return nil }
                labels.append((key, value))
                index = line.index(after: cursor)
                if index < line.endIndex, line[index] == "," { index = line.index(after: index) }
            }
            guard index < line.endIndex else { return nil }
            rest = line[line.index(after: index)...]
        } else {
            guard let space = line.firstIndex(of: " ") else { return nil }
            name = line[..<space]
            rest = line[space...]
        }
        let fields = rest.split(separator: " ")
        guard let text = fields.first else { return nil }
        let value: Double? =
            switch text {
            case "+Inf": .infinity
            case "-Inf": -.infinity
            case "NaN": .nan
            default: Double(text)
            }
        return value.map { Sample(name: String(name), labels: labels, value: $0) }
    }
}
