/// Which budget and outcome-limit rules match one (workflow, owner) pair: computed once per new pair
/// (globs evaluated then), looked up by the pair's ids on every event after that.
struct RuleMatches {
    var budgets: [Int]
    var unitCosts: [Int]
}
