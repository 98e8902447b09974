import Foundation
import Testing
import TokenmeterCore
import TokenmeterDaemon

/// The demo's HTML report (`tokenmeter demo`: embedded broker, generated traffic with a support-triage
/// spike, the daemon, the bundled config with its budgets) opened in Debian's headless Chromium at 1280 px,
/// as a FinOps lead would: the page lays out without horizontal scrolling, every chart has drawn marks, the
/// budget section lists every budget of the config, the spiking workflow is a series of the time chart,
/// and it prints to PDF.
@Suite struct ReportRenderTests {
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Measures the laid-out page and writes the results into the DOM, for `--dump-dom`. Injected into a
    /// copy: the report itself has no script.
    static let probe = """
        <script>
        window.addEventListener('load', () => {
          const d = document.documentElement;
          const charts = [];
          for (const svg of document.querySelectorAll('svg[role=img]')) {
            let marks = 0;
            for (const el of svg.querySelectorAll('.mark')) { const b = el.getBBox(); if (b.width > 0 || b.height > 0) marks++; }
            charts.push({ section: svg.closest('section').id, title: svg.getAttribute('aria-label'), marks });
          }
          let widest = 0;
          for (const el of document.querySelectorAll('main *')) widest = Math.max(widest, el.getBoundingClientRect().right);
          const pre = document.createElement('pre');
          pre.id = 'probe';
          pre.textContent = JSON.stringify({ scrollWidth: d.scrollWidth, viewport: window.innerWidth, widest, charts });
          document.body.appendChild(pre);
        });
        </script>
        """

    func chrome(_ args: [String], log: String) throws -> (status: Int32, out: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.chromium!)
        p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                       "--user-data-dir=" + log + ".profile"] + args
        let pipe = Pipe()
        p.standardOutput = pipe
        FileManager.default.createFile(atPath: log, contents: nil)
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, out)
    }

    @Test(.timeLimit(.minutes(5)),
          .enabled(if: ReportRenderTests.chromium != nil, "chromium is not installed (scripts/install-report-tools.sh installs it; CI always has it)"))
    func theDemosReportRendersAtWorkstationWidth() throws {
        let dir = try Harness.tempDir("render")
        #expect(try Harness.run(["demo", "--events", "20000", "--seconds", "2", "--dir", dir], log: dir + "/demo.log") == 0)
        let html = try String(contentsOfFile: dir + "/report.html", encoding: .utf8)
        // One self-contained file: nothing loaded from elsewhere (the SVG namespace is a name, not a fetch).
        for outside in ["<script", "src=", "<link", "@import", "url(", "href=\"http"] {
            #expect(!html.contains(outside), "the report loads something: \(outside)")
        }
        try html.replacingOccurrences(of: "</body>", with: Self.probe + "</body>")
            .write(toFile: dir + "/probed.html", atomically: true, encoding: .utf8)

        let dom = try chrome(["--window-size=1280,2000", "--virtual-time-budget=5000", "--dump-dom", "file://" + dir + "/probed.html"],
                             log: dir + "/chromium-dom.log")
        #expect(dom.status == 0, "see \(dir)/chromium-dom.log")
        let json = try #require(dom.out.range(of: "<pre id=\"probe\">").flatMap { open in
            dom.out[open.upperBound...].range(of: "</pre>").map { String(dom.out[open.upperBound..<$0.lowerBound]) }
        }, "no probe output in the DOM")
        let probe = try #require(try JSONSerialization.jsonObject(with: Data(json.replacingOccurrences(of: "&quot;", with: "\"").utf8)) as? [String: Any])
        let viewport = try #require(probe["viewport"] as? Double)
        #expect(viewport == 1280)
        #expect((probe["scrollWidth"] as? Double ?? .infinity) <= viewport, "horizontal overflow: \(probe)")
        #expect((probe["widest"] as? Double ?? .infinity) <= viewport, "an element reaches past 1280 px: \(probe)")

        // Every chart has drawn marks (bars, lines, points), and the ones a FinOps reader expects are there.
        let charts = try #require(probe["charts"] as? [[String: Any]])
        for c in charts { #expect((c["marks"] as? Int ?? 0) > 0, "chart without marks: \(c)") }
        let sections = Set(charts.compactMap { $0["section"] as? String })
        #expect(sections.isSuperset(of: ["spend-over-time", "budgets", "spend-by-owner", "spend-by-provider", "spend-by-model",
                                         "cost-per-outcome-over-time", "cache-and-reasoning"]), "\(sections)")

        // Every budget of the bundled config has its card (and its burn-down chart).
        guard case .success(let config) = ConfigLoader.parse(text: DemoConfiguration.toml, file: "demo.toml") else {
            Issue.record("the demo config does not parse"); return
        }
        #expect(!config.budgets.isEmpty)
        for b in config.budgets {
            #expect(dom.out.contains("data-budget=\"\(b.name)\""), "budget \(b.name) missing")
            #expect(charts.contains { ($0["title"] as? String) == "Budget \(b.name)" && ($0["marks"] as? Int ?? 0) > 0 })
        }
        // The demo's traffic makes support-triage spike: it is a series of the time chart with drawn bars.
        let spendChart = try #require(dom.out.range(of: "<section id=\"spend-over-time\">").map { String(dom.out[$0.lowerBound...].prefix { _ in true }) })
        let end = spendChart.range(of: "</section>")!.lowerBound
        #expect(spendChart[..<end].contains("data-series=\"support-triage\""), "the spiking workflow is not in the time chart")

        // What a person sees, and what prints: a screenshot and a PDF (kept next to the report when a check fails).
        #expect(try chrome(["--window-size=1280,2400", "--screenshot=" + dir + "/report.png", "file://" + dir + "/report.html"],
                           log: dir + "/chromium-shot.log").status == 0)
        #expect(try chrome(["--print-to-pdf=" + dir + "/report.pdf", "--no-pdf-header-footer", "file://" + dir + "/report.html"],
                           log: dir + "/chromium-pdf.log").status == 0)
        let pdf = try #require(FileManager.default.contents(atPath: dir + "/report.pdf"))
        #expect(pdf.starts(with: Data("%PDF".utf8)) && pdf.count > 20_000)
        let png = try #require(FileManager.default.contents(atPath: dir + "/report.png"))
        #expect(png.count > 50_000)
        try? FileManager.default.removeItem(atPath: dir)
    }
}
