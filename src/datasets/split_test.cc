#include "datasets/split.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "datasets/loader.h"

namespace ferry::datasets {
namespace {

using Sample = std::pair<size_t, uint64_t>;  // (shard, index in shard)

std::vector<Sample> Expand(const WorkerPlan& plan) {
  std::vector<Sample> out;
  for (const SampleSpan& s : plan.spans) {
    for (uint64_t i = 0; i < s.count; ++i) out.emplace_back(s.shard, s.first + i);
  }
  return out;
}

// Every combination the issue names: shards with 0 or 1 sample, more ranks than shards,
// batch sizes that do and do not divide, several workers.
TEST(PlanEpochTest, EqualRanksEverySampleOnceOrAtLeastOnce) {
  const std::vector<std::vector<uint64_t>> layouts = {
      {10}, {0, 1, 0, 7}, {3, 3, 3}, {1}, {5, 0, 0, 0, 2, 9, 1}, {100, 1, 37, 64, 2, 0, 18}};
  int checked = 0;
  for (const auto& counts : layouts) {
    uint64_t total = 0;
    for (uint64_t c : counts) total += c;
    for (int world : {1, 2, 3, 8}) {
      for (int workers : {0, 1, 2, 5}) {
        for (uint64_t batch : {1, 2, 4, 7}) {
          for (Remainder remainder : {Remainder::kPad, Remainder::kDrop}) {
            SplitOptions o;
            o.seed = 17;
            o.epoch = 3;
            o.world_size = world;
            o.num_workers = workers;
            o.batch_size = batch;
            o.remainder = remainder;
            auto plan = PlanEpoch(counts, o);
            std::string where =
                "counts=" + std::to_string(counts.size()) + " world=" + std::to_string(world) +
                " workers=" + std::to_string(workers) + " batch=" + std::to_string(batch) +
                (remainder == Remainder::kPad ? " pad" : " drop");
            if (remainder == Remainder::kDrop && total < static_cast<uint64_t>(world) * batch) {
              EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument) << where;
              continue;
            }
            ASSERT_TRUE(plan.ok()) << where << ": " << plan.status().ToString();
            EXPECT_EQ(plan->samples_per_rank % batch, 0u) << where;
            std::map<Sample, int> seen;
            for (const auto& rank : plan->plans) {
              ASSERT_EQ(rank.size(), static_cast<size_t>(std::max(1, workers))) << where;
              uint64_t rank_samples = 0;
              for (const WorkerPlan& w : rank) {
                EXPECT_EQ(w.samples % batch, 0u) << where;  // workers get whole batches
                auto samples = Expand(w);
                EXPECT_EQ(samples.size(), w.samples) << where;
                rank_samples += w.samples;
                for (const Sample& s : samples) {
                  ASSERT_LT(s.first, counts.size());
                  ASSERT_LT(s.second, counts[s.first]) << where;
                  ++seen[s];
                }
              }
              EXPECT_EQ(rank_samples, plan->samples_per_rank) << where;  // equal per rank
            }
            if (remainder == Remainder::kPad) {
              EXPECT_EQ(seen.size(), total) << where;  // none lost
              EXPECT_LT(plan->samples_per_rank * world - total,
                        static_cast<uint64_t>(world) * batch)
                  << where;  // padding is less than one batch per rank
            } else {
              for (const auto& [s, n] : seen) EXPECT_EQ(n, 1) << where;  // none twice
              EXPECT_LT(total - seen.size(), static_cast<uint64_t>(world) * batch) << where;
            }
            ++checked;
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 600);  // the rest are drop plans refused for too few samples
}

TEST(PlanEpochTest, DeterministicPerSeedAndEpochAndDifferentAcrossEpochs) {
  std::vector<uint64_t> counts(50, 4);
  SplitOptions o;
  o.world_size = 2;
  auto a = PlanEpoch(counts, o), b = PlanEpoch(counts, o);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->shard_order, b->shard_order);
  o.epoch = 1;
  auto c = PlanEpoch(counts, o);
  EXPECT_NE(a->shard_order, c->shard_order);
  o.seed = 99;
  o.epoch = 0;
  EXPECT_NE(PlanEpoch(counts, o)->shard_order, a->shard_order);
  o.shuffle_shards = false;
  auto ordered = PlanEpoch(counts, o);
  for (size_t i = 0; i < counts.size(); ++i) EXPECT_EQ(ordered->shard_order[i], i);
  // A fixed mixer, not std::shuffle: this order is the same on every platform and release
  // (changing it would silently change every user's data order and break resumes).
  SplitOptions fixed;
  fixed.seed = 1;
  EXPECT_EQ(PlanEpoch({1, 1, 1, 1, 1, 1, 1, 1}, fixed)->shard_order,
            (std::vector<size_t>{4, 2, 0, 6, 1, 3, 5, 7}));
}

TEST(PlanEpochTest, ReadersStreamFewPartialShards) {
  std::vector<uint64_t> counts(40, 100);
  SplitOptions o;
  o.world_size = 4;
  o.num_workers = 3;
  o.batch_size = 8;
  auto plan = PlanEpoch(counts, o);
  ASSERT_TRUE(plan.ok());
  for (const auto& rank : plan->plans) {
    for (const WorkerPlan& w : rank) {
      int partial = 0;
      for (const SampleSpan& s : w.spans) partial += s.count != 100;
      EXPECT_LE(partial, 2);  // contiguous runs: at most the first and the last shard partial
    }
  }
}

TEST(PlanEpochTest, BadOptionsAreClear) {
  SplitOptions o;
  o.world_size = 0;
  EXPECT_EQ(PlanEpoch({1}, o).status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(PlanEpoch({0, 0}, SplitOptions{}).status().message().find("no samples"),
            std::string::npos);
  SplitOptions drop;
  drop.remainder = Remainder::kDrop;
  drop.world_size = 4;
  auto too_few = PlanEpoch({3}, drop);
  EXPECT_NE(too_few.status().message().find("use remainder='pad'"), std::string::npos);
  SplitOptions huge;
  huge.world_size = 2;
  huge.batch_size = uint64_t{1} << 63;  // world x batch overflows
  EXPECT_EQ(PlanEpoch({10}, huge).status().code(), StatusCode::kInvalidArgument);
  huge.batch_size = uint64_t{1} << 40;
  EXPECT_NE(PlanEpoch({10}, huge).status().message().find("more than 64 times"), std::string::npos);
}

}  // namespace
}  // namespace ferry::datasets

namespace ferry::datasets {
namespace {

uint64_t PlanSamples(const WorkerPlan& plan) {
  uint64_t n = 0;
  for (const auto& s : plan.spans) n += s.count;
  return n;
}

TEST(ResumeTest, NothingConsumedIsTheWholeEpochAndEverythingConsumedIsNothing) {
  std::vector<uint64_t> counts = {13, 0, 7, 21, 1, 9};
  SplitOptions options;
  options.seed = 3;
  options.world_size = 2;
  options.num_workers = 2;
  options.batch_size = 4;
  options.remainder = Remainder::kDrop;
  auto whole = PlanEpoch(counts, options);
  ASSERT_TRUE(whole.ok());
  std::vector<ResumeSegment> start = {{options, 8, {{0, 0}, 0}}};
  auto resumed = PlanEpochAfter(counts, start, options);
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_EQ(resumed->samples_per_rank, whole->samples_per_rank);
  for (size_t r = 0; r < 2; ++r) {
    for (size_t w = 0; w < 2; ++w) {
      EXPECT_EQ(PlanSamples(whole->plans[r][w]), PlanSamples(resumed->plans[r][w]));
    }
  }
  std::vector<ResumeSegment> end = {
      {options, 8, {{whole->plans[0][0].samples, whole->plans[0][1].samples}, 0}}};
  auto nothing = PlanEpochAfter(counts, end, options);
  ASSERT_TRUE(nothing.ok());
  EXPECT_EQ(nothing->samples_per_rank, 0u);
  for (const auto& workers : nothing->plans) {
    for (const auto& plan : workers) EXPECT_TRUE(plan.spans.empty());
  }
  end[0].progress.consumed[1] += 1;  // more than worker 1's plan
  EXPECT_EQ(PlanEpochAfter(counts, end, options).status().code(), StatusCode::kInvalidArgument);
  start[0].progress.consumed = {0};  // one worker's progress for a split of two
  EXPECT_EQ(PlanEpochAfter(counts, start, options).status().code(), StatusCode::kInvalidArgument);
  SplitOptions hostile = options;  // a hand-edited state: refused before a plan is sized by it
  hostile.num_workers = 1 << 30;
  std::vector<ResumeSegment> huge = {{hostile, 8, {{0, 0}, 0}}};
  EXPECT_EQ(PlanEpochAfter(counts, huge, options).status().code(), StatusCode::kInvalidArgument);
  options.seed = 4;
  EXPECT_EQ(PlanEpochAfter(counts, end, options).status().code(), StatusCode::kInvalidArgument);
}

// The samples (shard, index) a rank's loader would have yielded, simulated from the plans, the
// shuffle and the loader's turns: what the exact resume and the re-splits must agree with.
std::multiset<std::pair<size_t, uint64_t>> Yielded(const EpochPlan& plan, const SplitOptions& o,
                                                   size_t shuffle_buffer,
                                                   const WorkerProgress& progress) {
  std::multiset<std::pair<size_t, uint64_t>> out;
  for (size_t rank = 0; rank < plan.plans.size(); ++rank) {
    for (size_t w = 0; w < plan.plans[rank].size(); ++w) {
      std::vector<std::pair<size_t, uint64_t>> positions;
      for (const auto& s : plan.plans[rank][w].spans) {
        for (uint64_t i = 0; i < s.count; ++i) positions.emplace_back(s.shard, s.first + i);
      }
      std::vector<uint64_t> order =
          ShuffledOrder(positions.size(), shuffle_buffer, ShuffleSeed(o.seed, o.epoch, rank, w));
      for (uint64_t i = 0; i < progress.consumed[w]; ++i) out.insert(positions[order[i]]);
    }
  }
  return out;
}

TEST(ResumeTest, ProgressFollowsTheLoadersTurnsAndRefusesAPointInsideATurn) {
  // Worker plans of 10 and 6 samples, batches of 4: w0 4, w1 4, w0 4, w1 2 (partial), w0 2.
  LoaderTurns turns{4, false, "samples"};
  auto after = [&](uint64_t seen) { return ProgressAfter({10, 6}, turns, seen); };
  EXPECT_EQ(after(0)->consumed, (std::vector<uint64_t>{0, 0}));
  EXPECT_EQ(after(8)->consumed, (std::vector<uint64_t>{4, 4}));
  EXPECT_EQ(after(8)->next_worker, 0u);
  EXPECT_EQ(after(12)->consumed, (std::vector<uint64_t>{8, 4}));
  EXPECT_EQ(after(14)->consumed, (std::vector<uint64_t>{8, 6}));
  EXPECT_EQ(after(16)->consumed, (std::vector<uint64_t>{10, 6}));
  auto inside = after(10);
  ASSERT_EQ(inside.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(inside.status().message().find("batches end at 8 and 12"), std::string::npos)
      << inside.status().ToString();
  EXPECT_EQ(after(17).status().code(), StatusCode::kInvalidArgument);
  // drop_last: the partial batches are never taken, so the epoch ends at 8 + 4 = 12... then w0
  // has 2 left (< 4): dropped too.
  turns.drop_last = true;
  EXPECT_EQ(after(12)->consumed, (std::vector<uint64_t>{8, 4}));
  EXPECT_EQ(after(16).status().code(), StatusCode::kInvalidArgument);
  // Many whole rounds at once give what turn-by-turn stepping gives.
  auto big = ProgressAfter({1000003, 1000001, 999999}, {3, false, "samples"}, 2999997);
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->consumed, (std::vector<uint64_t>{999999, 999999, 999999}));
  EXPECT_EQ(big->next_worker, 0u);
  // The resumed loader's worker 0 plays the one whose turn came next.
  WorkerProgress p{{8, 4}, 1};
  EXPECT_EQ(ResumeWorker(p, 0).plays, 1u);
  EXPECT_EQ(ResumeWorker(p, 0).skip, 4u);
  EXPECT_EQ(ResumeWorker(p, 1).plays, 0u);
  EXPECT_EQ(ResumeWorker(p, 1).skip, 8u);
}

TEST(ResumeTest, ReSplittingTwiceYieldsEachRemainingSampleOnce) {
  std::vector<uint64_t> counts = {13, 0, 7, 21, 1, 9, 16};
  SplitOptions a;
  a.seed = 5;
  a.epoch = 2;
  a.world_size = 2;
  a.num_workers = 2;
  a.batch_size = 4;
  a.remainder = Remainder::kDrop;
  SplitOptions b = a, c = a;
  b.world_size = 3;
  b.num_workers = 1;
  b.batch_size = 2;
  c.world_size = 1;
  c.num_workers = 3;
  c.batch_size = 3;
  auto plan_a = PlanEpoch(counts, a);
  ASSERT_TRUE(plan_a.ok());
  std::vector<ResumeSegment> history = {{a, 5, {{8, 4}, 1}}};
  auto plan_b = PlanEpochAfter(counts, history, b);
  ASSERT_TRUE(plan_b.ok()) << plan_b.status().ToString();
  history.push_back({b, 3, {{6}, 0}});
  auto plan_c = PlanEpochAfter(counts, history, c);
  ASSERT_TRUE(plan_c.ok()) << plan_c.status().ToString();
  std::vector<uint64_t> c_sizes;
  for (const auto& plan : plan_c->plans[0]) c_sizes.push_back(plan.samples);
  WorkerProgress all_of_c{c_sizes, 0};

  auto yielded = Yielded(*plan_a, a, 5, history[0].progress);
  for (const auto& s : Yielded(*plan_b, b, 3, history[1].progress)) yielded.insert(s);
  for (const auto& s : Yielded(*plan_c, c, 0, all_of_c)) yielded.insert(s);
  // drop: no sample twice; what a plan left out stays in what is left, so only the last split's
  // drop is missing: less than one batch of its one rank.
  std::set<std::pair<size_t, uint64_t>> distinct(yielded.begin(), yielded.end());
  EXPECT_EQ(distinct.size(), yielded.size());
  uint64_t total = 0;
  for (uint64_t n : counts) total += n;
  EXPECT_LT(total - yielded.size(), 3u);
}

TEST(ResampledTest, EachRankAndWorkerDrawsWholeShardsIndependently) {
  std::vector<uint64_t> counts = {5, 0, 3, 8, 2, 6, 4, 7, 1};
  SplitOptions options;
  options.seed = 1;
  options.world_size = 2;
  options.num_workers = 3;
  options.batch_size = 2;
  options.resampled_samples = 20;  // 10 batches per rank: workers get 3, 3, 4
  auto plan = PlanEpoch(counts, options);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->samples_per_rank, 20u);
  std::set<std::vector<size_t>> draws;
  for (const auto& workers : plan->plans) {
    EXPECT_EQ(PlanSamples(workers[0]), 6u);
    EXPECT_EQ(PlanSamples(workers[1]), 6u);
    EXPECT_EQ(PlanSamples(workers[2]), 8u);
    for (const auto& worker : workers) {
      std::vector<size_t> shards;
      for (size_t k = 0; k < worker.spans.size(); ++k) {
        const auto& span = worker.spans[k];
        EXPECT_NE(span.shard, 1u);  // an empty shard is never drawn
        EXPECT_EQ(span.first, 0u);
        if (k + 1 < worker.spans.size()) {
          EXPECT_EQ(span.count, counts[span.shard]);  // whole shards but the last
        }
        shards.push_back(span.shard);
      }
      draws.insert(shards);
    }
  }
  EXPECT_EQ(draws.size(), 6u);  // independent draws, not one sequence repeated
  options.epoch = 1;
  auto next = PlanEpoch(counts, options);
  ASSERT_TRUE(next.ok());
  auto shards_of = [](const WorkerPlan& worker) {
    std::vector<size_t> shards;
    for (const auto& span : worker.spans) shards.push_back(span.shard);
    return shards;
  };
  EXPECT_NE(shards_of(next->plans[0][0]), shards_of(plan->plans[0][0]));  // a new epoch's draws
  options.resampled_samples = 21;
  EXPECT_EQ(PlanEpoch(counts, options).status().code(), StatusCode::kInvalidArgument);
  options.resampled_samples = uint64_t{1} << 40;  // a hand-edited state: refused, not allocated
  EXPECT_EQ(PlanEpoch(counts, options).status().code(), StatusCode::kInvalidArgument);
  options.resampled_samples = 20;
  std::vector<ResumeSegment> history = {{options, 0, {{2, 2, 2}, 0}}};
  SplitOptions other = options;
  other.world_size = 3;
  EXPECT_EQ(PlanEpochAfter(counts, history, other).status().code(), StatusCode::kInvalidArgument);
}

TEST(ResumeTest, ShuffledOrderIsAPermutation) {
  for (size_t buffer : {0, 1, 2, 7, 100}) {
    std::vector<uint64_t> order = ShuffledOrder(50, buffer, 9);
    std::vector<uint64_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    for (uint64_t i = 0; i < 50; ++i) ASSERT_EQ(sorted[i], i) << buffer;
    if (buffer > 1) {
      EXPECT_NE(order, sorted) << buffer;
    }
  }
}

}  // namespace
}  // namespace ferry::datasets
