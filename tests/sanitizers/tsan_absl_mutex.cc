// Lets ThreadSanitizer see absl::Mutex in the TENDED_TSAN build. Debian's libabsl is not
// built with TSan, so the happens-before edges its locks create are invisible and every
// access they guard would be reported as a race. Each entry point below takes precedence
// over the library's (the executable's definition wins for every caller, gRPC's included),
// forwards to it through dlsym(RTLD_NEXT), and tells TSan about the acquire or release.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);

namespace {

#define TENDED_STRINGIFY_INNER(x) #x
#define TENDED_STRINGIFY(x) TENDED_STRINGIFY_INNER(x)

// "_ZN4absl<len><inline namespace>" (or _ZNK for a const member) + the rest of an
// Itanium-mangled member name.
std::string AbslSymbol(const char* rest, bool is_const) {
  const std::string ns = TENDED_STRINGIFY(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  return std::string(is_const ? "_ZNK4absl" : "_ZN4absl") + std::to_string(ns.size()) + ns + rest;
}

template <typename Fn>
Fn Real(const char* rest, bool is_const = false) {
  const std::string name = AbslSymbol(rest, is_const);
  void* found = dlsym(RTLD_NEXT, name.c_str());
  if (found == nullptr) {
    std::fprintf(stderr, "tsan_absl_mutex: %s not found in libabsl\n", name.c_str());
    std::abort();
  }
  return reinterpret_cast<Fn>(found);
}

using MutexFn = void (*)(absl::Mutex*);
using MutexTryFn = bool (*)(absl::Mutex*);
using WhenFn = void (*)(absl::Mutex*, const absl::Condition&);
using WhenTimeoutFn = bool (*)(absl::Mutex*, const absl::Condition&, absl::Duration);
using WhenDeadlineFn = bool (*)(absl::Mutex*, const absl::Condition&, absl::Time);
using WaitFn = void (*)(absl::CondVar*, absl::Mutex*);
using WaitTimeoutFn = bool (*)(absl::CondVar*, absl::Mutex*, absl::Duration);
using WaitDeadlineFn = bool (*)(absl::CondVar*, absl::Mutex*, absl::Time);
using NotifyFn = void (*)(absl::Notification*);
using NotificationWaitFn = void (*)(const absl::Notification*);
using NotificationTimeoutFn = bool (*)(const absl::Notification*, absl::Duration);
using NotificationDeadlineFn = bool (*)(const absl::Notification*, absl::Time);

struct RealFunctions {
  MutexFn lock = Real<MutexFn>("5Mutex4LockEv");
  MutexFn unlock = Real<MutexFn>("5Mutex6UnlockEv");
  MutexTryFn try_lock = Real<MutexTryFn>("5Mutex7TryLockEv");
  MutexFn reader_lock = Real<MutexFn>("5Mutex10ReaderLockEv");
  MutexFn reader_unlock = Real<MutexFn>("5Mutex12ReaderUnlockEv");
  MutexTryFn reader_try_lock = Real<MutexTryFn>("5Mutex13ReaderTryLockEv");
  WhenFn lock_when = Real<WhenFn>("5Mutex8LockWhenERKNS0_9ConditionE");
  WhenFn reader_lock_when = Real<WhenFn>("5Mutex14ReaderLockWhenERKNS0_9ConditionE");
  WhenTimeoutFn lock_when_timeout =
      Real<WhenTimeoutFn>("5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  WhenDeadlineFn lock_when_deadline =
      Real<WhenDeadlineFn>("5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  WhenTimeoutFn reader_lock_when_timeout =
      Real<WhenTimeoutFn>("5Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  WhenDeadlineFn reader_lock_when_deadline =
      Real<WhenDeadlineFn>("5Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  WhenFn await = Real<WhenFn>("5Mutex5AwaitERKNS0_9ConditionE");
  WhenTimeoutFn await_timeout =
      Real<WhenTimeoutFn>("5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  WhenDeadlineFn await_deadline =
      Real<WhenDeadlineFn>("5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  WaitFn wait = Real<WaitFn>("7CondVar4WaitEPNS0_5MutexE");
  WaitTimeoutFn wait_timeout =
      Real<WaitTimeoutFn>("7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  WaitDeadlineFn wait_deadline =
      Real<WaitDeadlineFn>("7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  NotifyFn notify = Real<NotifyFn>("12Notification6NotifyEv");
  NotificationWaitFn wait_for_notification =
      Real<NotificationWaitFn>("12Notification19WaitForNotificationEv", true);
  NotificationTimeoutFn wait_for_notification_timeout = Real<NotificationTimeoutFn>(
      "12Notification30WaitForNotificationWithTimeoutENS0_8DurationE", true);
  NotificationDeadlineFn wait_for_notification_deadline = Real<NotificationDeadlineFn>(
      "12Notification31WaitForNotificationWithDeadlineENS0_4TimeE", true);
};

const RealFunctions& Functions() {
  static const RealFunctions* functions = new RealFunctions();
  return *functions;
}

// absl's own lock-order graph is guarded by a spin lock TSan cannot see either, and its
// copies (intercepted memmove) would be reported as races. TSan's reports are the check here.
const bool kAbslDeadlockGraphOff = [] {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return true;
}();

void Acquired(absl::Mutex* mu) { __tsan_acquire(mu); }
void Releasing(absl::Mutex* mu) { __tsan_release(mu); }

// absl evaluates a condition with the mutex held but inside its own code (in the waiter, or
// in the thread that unlocks), where no entry point above runs: the evaluation is wrapped
// so that it reads what the last holder wrote and the next holder sees it did.
class AnnotatedCondition {
 public:
  AnnotatedCondition(const absl::Condition& inner, absl::Mutex* mu) : inner_(inner), mu_(mu) {}
  absl::Condition condition() { return absl::Condition(&Eval, this); }

 private:
  static bool Eval(AnnotatedCondition* self) {
    __tsan_acquire(self->mu_);
    const bool met = self->inner_.Eval();
    __tsan_release(self->mu_);
    return met;
  }

  const absl::Condition& inner_;
  absl::Mutex* mu_;
};

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  Functions().lock(this);
  Acquired(this);
}

void Mutex::Unlock() {
  Releasing(this);
  Functions().unlock(this);
}

bool Mutex::TryLock() {
  const bool locked = Functions().try_lock(this);
  if (locked) Acquired(this);
  return locked;
}

void Mutex::ReaderLock() {
  Functions().reader_lock(this);
  Acquired(this);
}

void Mutex::ReaderUnlock() {
  Releasing(this);
  Functions().reader_unlock(this);
}

bool Mutex::ReaderTryLock() {
  const bool locked = Functions().reader_try_lock(this);
  if (locked) Acquired(this);
  return locked;
}

void Mutex::LockWhen(const Condition& cond) {
  AnnotatedCondition annotated(cond, this);
  Functions().lock_when(this, annotated.condition());
  Acquired(this);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  AnnotatedCondition annotated(cond, this);
  Functions().reader_lock_when(this, annotated.condition());
  Acquired(this);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  AnnotatedCondition annotated(cond, this);
  const bool met = Functions().lock_when_timeout(this, annotated.condition(), timeout);
  Acquired(this);
  return met;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  AnnotatedCondition annotated(cond, this);
  const bool met = Functions().lock_when_deadline(this, annotated.condition(), deadline);
  Acquired(this);
  return met;
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  AnnotatedCondition annotated(cond, this);
  const bool met = Functions().reader_lock_when_timeout(this, annotated.condition(), timeout);
  Acquired(this);
  return met;
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  AnnotatedCondition annotated(cond, this);
  const bool met = Functions().reader_lock_when_deadline(this, annotated.condition(), deadline);
  Acquired(this);
  return met;
}

void Mutex::Await(const Condition& cond) {
  Releasing(this);
  AnnotatedCondition annotated(cond, this);
  Functions().await(this, annotated.condition());
  Acquired(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, absl::Duration timeout) {
  Releasing(this);
  AnnotatedCondition annotated(cond, this);
  const bool met = Functions().await_timeout(this, annotated.condition(), timeout);
  Acquired(this);
  return met;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, absl::Time deadline) {
  Releasing(this);
  AnnotatedCondition annotated(cond, this);
  const bool met = Functions().await_deadline(this, annotated.condition(), deadline);
  Acquired(this);
  return met;
}

void CondVar::Wait(Mutex* mu) {
  Releasing(mu);
  Functions().wait(this, mu);
  Acquired(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, absl::Duration timeout) {
  Releasing(mu);
  const bool timed_out = Functions().wait_timeout(this, mu, timeout);
  Acquired(mu);
  return timed_out;
}

bool CondVar::WaitWithDeadline(Mutex* mu, absl::Time deadline) {
  Releasing(mu);
  const bool timed_out = Functions().wait_deadline(this, mu, deadline);
  Acquired(mu);
  return timed_out;
}

// The flag is released and acquired at its own address: HasBeenNotified, inline in our code,
// loads it with acquire order, which TSan pairs with that release.
void Notification::Notify() {
  __tsan_release(const_cast<std::atomic<bool>*>(&notified_yet_));
  Functions().notify(this);
}

void Notification::WaitForNotification() const {
  Functions().wait_for_notification(this);
  __tsan_acquire(const_cast<std::atomic<bool>*>(&notified_yet_));
}

bool Notification::WaitForNotificationWithTimeout(absl::Duration timeout) const {
  const bool notified = Functions().wait_for_notification_timeout(this, timeout);
  if (notified) __tsan_acquire(const_cast<std::atomic<bool>*>(&notified_yet_));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(absl::Time deadline) const {
  const bool notified = Functions().wait_for_notification_deadline(this, deadline);
  if (notified) __tsan_acquire(const_cast<std::atomic<bool>*>(&notified_yet_));
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl
