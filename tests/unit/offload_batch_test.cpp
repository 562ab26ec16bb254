// Offload looks at a batch of copies together (issue 15): the copies of a
// batch are stat'ed with one stat_many and the clean ones hashed with one
// read_back_many — a server lists a folder once and runs one hash command
// instead of one per file — and each file is then judged in order, exactly
// as when it was looked at alone.
#include <gtest/gtest.h>

#include "engine/index.hpp"
#include "engine/offload/offload.hpp"
#include "sync_util.hpp"

using namespace sq;
using namespace sq::test;
namespace fs = std::filesystem;

namespace {

struct Counts {
  int read_back = 0, read_back_many = 0, names = 0, stat_many = 0, stat_many_names = 0;
};

// Counts how the offload asks the destination to hash copies.
class CountingTransport : public dest::ForwardingTransport {
 public:
  CountingTransport(std::unique_ptr<dest::Transport> inner, std::shared_ptr<Counts> n)
      : ForwardingTransport(std::shared_ptr<dest::Transport>(std::move(inner))), n_(std::move(n)) {}
  std::vector<dest::Stat> stat_many(const std::vector<std::string>& names) override {
    n_->stat_many += 1;
    n_->stat_many_names += static_cast<int>(names.size());
    return ForwardingTransport::stat_many(names);
  }
  dest::ReadBack read_back(const std::string& name) override {
    n_->read_back += 1;
    return ForwardingTransport::read_back(name);
  }
  std::vector<dest::ReadBack> read_back_many(const std::vector<std::string>& names) override {
    n_->read_back_many += 1;
    n_->names += static_cast<int>(names.size());
    return ForwardingTransport::read_back_many(names);
  }

 private:
  std::shared_ptr<Counts> n_;
};

class OffloadBatch : public ::testing::Test {
 protected:
  SyncSandbox sb{"", fs::temp_directory_path()};
  std::shared_ptr<Counts> counts = std::make_shared<Counts>();

  void SetUp() override {
    auto text = SyncSandbox::config_text(sb.src(), sb.dest_root());
    sb.set_config(text.replace(text.find("sync_to = ['d']\n"), 16, "sync_to = ['d']\noffload_requires = ['d']\n"));
    for (int i = 0; i < 10; ++i) sb.write("a" + std::to_string(i) + ".txt", "content of file " + std::to_string(i));
    ASSERT_EQ(sb.index().status, store::RunStatus::success);
    ASSERT_EQ(sb.sync_init().status, store::RunStatus::success);
  }

  engine::OffloadReport offload_all() {
    engine::OffloadOptions o;
    o.selectors = {"."};
    o.transport = [c = counts](const std::string& root) {
      return std::make_unique<CountingTransport>(dest::open_local_transport(root), c);
    };
    return engine::run_offload(sb.cfg(), sb.st(), "v", o);
  }

  std::int64_t refused(const engine::OffloadReport& r, engine::GateCause cause) {
    std::int64_t n = 0;
    for (const auto& g : r.refusals)
      if (g.cause == cause) n += g.files;
    return n;
  }
};

TEST_F(OffloadBatch, TheCopiesOfABatchAreStatedAndHashedWithOneRequestEach) {
  auto r = offload_all();
  EXPECT_EQ(r.offloaded, 10);
  EXPECT_EQ(counts->stat_many, 1);
  EXPECT_EQ(counts->stat_many_names, 10);
  EXPECT_EQ(r.copies_rehashed, 10);
  EXPECT_EQ(counts->read_back_many, 1) << "one request for the batch of 10";
  EXPECT_EQ(counts->names, 10);
  EXPECT_EQ(counts->read_back, 0) << "no copy is hashed on its own";
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(fs::exists(sb.src() / ("a" + std::to_string(i) + ".txt")));
}

TEST_F(OffloadBatch, ADamagedCopyInABatchRefusesItAndTheLaterFilesButNotTheEarlierOnes) {
  auto victim = sb.vdest() / "a5.txt";
  auto mtime = fs::last_write_time(victim);
  write_file(victim, "CONTENT OF FILE 5");
  fs::last_write_time(victim, mtime);
  auto r = offload_all();
  EXPECT_EQ(r.offloaded, 5) << "a0..a4 come before the finding and are confirmed";
  EXPECT_EQ(refused(r, engine::GateCause::copy_damaged), 1);
  EXPECT_EQ(refused(r, engine::GateCause::alarm_latched), 4) << "after the finding the target is trusted for nothing";
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(fs::exists(sb.src() / ("a" + std::to_string(i) + ".txt")), i >= 5) << "a" << i;
}

TEST_F(OffloadBatch, ACopyRemovedFromTheMiddleOfABatchIsAFindingAndNothingAfterItGoes) {
  fs::remove(sb.vdest() / "a3.txt");
  auto r = offload_all();
  EXPECT_EQ(r.offloaded, 3);
  EXPECT_EQ(refused(r, engine::GateCause::copy_missing), 1);
  EXPECT_EQ(refused(r, engine::GateCause::alarm_latched), 6);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(fs::exists(sb.src() / ("a" + std::to_string(i) + ".txt")), i >= 3) << "a" << i;
}

}  // namespace
