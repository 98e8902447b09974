import Testing
@testable import TokenmeterCore
@testable import TokenmeterDaemon

/// What a SIGHUP does with each changed key, by its class in the key table: applied at once, kept until a
/// restart (and named in the warning), or not read by `run` at all.
@Suite("Config reload classes")
struct ConfigReloadTests {
    let defaults = TokenmeterConfig()

    /// Every key (and every map and array of tables) of `reload`, each with a configuration that differs
    /// from the defaults in that key alone, taken from the file that sets every key.
    func changedOneByOne(_ reload: ConfigReloadClass) throws -> [(path: String, config: TokenmeterConfig)] {
        let every = try ConfigLoader.parse(text: ConfigKeys.everyKeyTOML(), file: "t.toml").get()
        var out: [(String, TokenmeterConfig)] = []
        for section in ConfigKeys.sections {
            if section.shape == .table {
                for key in section.keys where key.reload == reload {
                    var c = defaults
                    key.copy(&c, every)
                    out.append((key.path, c))
                }
            } else if section.reload == reload {
                var c = defaults
                section.copy(&c, every)
                out.append((section.name, c))
            }
        }
        return out
    }

    @Test func aRestartKeyIsNamedAndKeepsItsRunningValue() throws {
        let changed = try changedOneByOne(.restart)
        #expect(changed.count >= 20)
        for (path, new) in changed {
            #expect(new != defaults, "\(path)")
            #expect(ConfigReload.restartKeys(old: defaults, new: new) == [path])
            #expect(ConfigReload.applied(defaults, new) == defaults, "\(path) must not be applied by a reload")
        }
    }

    @Test func anAtOnceKeyIsAppliedWithoutARestartWarning() throws {
        let changed = try changedOneByOne(.atOnce)
        #expect(Set(changed.map(\.path)).isSuperset(of: ["state.checkpoint_interval", "state.max_memory", "price", "budget",
                                                         "spike", "outcome_limit"]))
        for (path, new) in changed {
            #expect(ConfigReload.restartKeys(old: defaults, new: new).isEmpty, "\(path)")
            #expect(ConfigReload.applied(defaults, new) == new, "\(path) must be applied by a reload")
        }
    }

    @Test func aKeyRunDoesNotReadIsNeitherAppliedNorWarnedAbout() throws {
        let changed = try changedOneByOne(.notRun)
        #expect(changed.map(\.path) == ["focus.billing_account_id", "focus.billing_account_name"])
        for (path, new) in changed {
            #expect(ConfigReload.restartKeys(old: defaults, new: new).isEmpty, "\(path)")
            #expect(ConfigReload.applied(defaults, new) == defaults, "\(path)")
        }
    }

    /// The two keys a reload used to pass over in silence, changed in the file: the warning names both.
    @Test func theRestartWarningNamesTheChangedKeys() throws {
        let old = try ConfigLoader.parse(text: "[kafka]\nhandover_timeout = \"15s\"\n", file: "t.toml").get()
        let new = try ConfigLoader.parse(text: "[kafka]\nhandover_timeout = \"30s\"\n[rollups]\nmax_keys_per_window = 50\n"
                                         + "[[price]]\nmodel = \"m\"\ninput = 1\noutput = 2\n", file: "t.toml").get()
        let keys = ConfigReload.restartKeys(old: old, new: new)
        #expect(keys == ["kafka.handover_timeout", "rollups.max_keys_per_window"])
        let warning = ConfigReload.restartNeeded(keys)
        #expect(warning.hasPrefix("restart needed: "))
        #expect(warning.contains("kafka.handover_timeout, rollups.max_keys_per_window"))
        let applied = ConfigReload.applied(old, new)
        #expect(applied.prices == new.prices && applied.kafka.handoverTimeout.label == "15s" && applied.rollups.maxKeysPerWindow == 100_000)
    }

    /// The start checks run on a reloaded file only when it changes a key they check.
    @Test func onlyAStartCheckedKeyRunsTheStartChecksOnReload() throws {
        let startChecked = ConfigKeys.sections.flatMap { s in s.shape == .table ? s.keys.filter(\.startChecked).map(\.path)
                                                               : s.startChecked ? [s.name] : [] }
        #expect(Set(startChecked) == ["kafka.brokers", "kafka.group_id", "kafka.properties", "kafka.secret_files", "rollups.dir",
                                      "rollups.instance", "state.dir", "http.listen"])
        let bad = try ConfigLoader.parse(text: "[kafka.properties]\n\"linger.msx\" = \"5\"\n[state]\ndir = \"/tmp\"\n"
                                         + "[rollups]\ndir = \"/tmp\"\n[http]\nlisten = \"127.0.0.1:0\"\n", file: "t.toml").get()
        #expect(ConfigReload.problemsForTheNextStart(old: defaults, new: bad, instance: "t").map(\.message)
                    .contains { $0.hasPrefix("unknown librdkafka property `linger.msx`") })
        var onlyHandover = bad
        onlyHandover.kafka.handoverTimeout = DurationSpec(millis: 1_000, label: "1s")
        #expect(ConfigReload.problemsForTheNextStart(old: bad, new: onlyHandover, instance: "t").isEmpty)
    }
}
