#pragma once
// How an ecall is declared (ecalls.cc): which session it needs, which protocol,
// and the contract of every pointer it takes. The entry checks all of it before
// the body runs, so protocol code only ever sees checked arguments.
#include <openenclave/enclave.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <utility>

#include "session.h"
#include "veil_t.h"

namespace veil::enclave {

/**
 * One pointer argument: where it points, how many elements the bridge says it
 * holds, and its name in the EDL. Both bridges (oeedger8r and runtime/edger)
 * pass a NULL host pointer through as NULL whatever its count, so a NULL with
 * a nonzero count is refused before any use. (A NULL with count 0 is an empty
 * buffer, which protocols that need data refuse by its shape.)
 */
struct Arg {
  const void* pointer;
  size_t count;
  const char* name;
};

/** Refuse the first NULL argument with a count, naming it. */
inline int check_args(Session& s, const char* call, std::initializer_list<Arg> args) {
  for (const Arg& a : args)
    if (a.pointer == nullptr && a.count > 0)
      return s.fail(VEIL_ERR_INVALID_ARGUMENT, "%s: %s is NULL (count %zu)", call, a.name,
                    a.count);
  return VEIL_OK;
}

/**
 * A [user_check] pointer the host lends: count values of T that must lie wholly
 * outside the enclave (docs/design.md §5); refused naming it otherwise. The
 * protocol then reads each value once.
 */
template <typename T>
int check_lent(Session& s, const char* call, const T* p, size_t count, const char* name) {
  if (count == 0 || (count <= SIZE_MAX / sizeof(T) && oe_is_outside_enclave(p, count * sizeof(T))))
    return VEIL_OK;
  return s.fail(VEIL_ERR_INVALID_ARGUMENT, "%s: %s (%zu values) is not host memory", call, name,
                count);
}

/** An ecall on any open session, aborted or not (stats, status). */
template <typename Body>
int on_session(uint64_t session, const char* call, std::initializer_list<Arg> args, Body body) {
  Guard guard(session);
  if (guard.status() != VEIL_OK) return guard.status();
  Session& s = guard.session();
  int rc = check_args(s, call, args);
  return rc != VEIL_OK ? rc : body(s);
}

/**
 * An ecall that configures protocol P in a live session that runs none yet.
 * The body creates it into *out; the session keeps it only on success.
 */
template <class P, typename Body>
int configure(uint64_t session, const char* call, std::initializer_list<Arg> args, Body body) {
  Guard guard(session);
  if (guard.status() != VEIL_OK) return guard.status();
  Session& s = guard.session();
  math::UsePool workers(&s.workers());
  if (s.aborted())
    return s.fail(VEIL_ERR_ABORTED, "%s: the session was aborted by an earlier integrity failure",
                  call);
  if (s.has_protocol())
    return s.fail(VEIL_ERR_ORDER,
                  "%s: this session is already configured for a protocol; open a new session",
                  call);
  int rc = check_args(s, call, args);
  if (rc != VEIL_OK) return rc;
  std::unique_ptr<P> created;
  rc = body(s, &created);
  if (rc == VEIL_OK) s.set_protocol(std::move(created));
  return s.finish_call(rc);
}

/**
 * An ecall on a live session that runs protocol P; `configured_by` names the
 * ecall that sets P up, for the refusal. An integrity failure in the body
 * aborts the session, which then drops P and its secrets (finish_call).
 */
template <class P, typename Body>
int on_protocol(uint64_t session, const char* call, const char* configured_by,
                std::initializer_list<Arg> args, Body body) {
  Guard guard(session);
  if (guard.status() != VEIL_OK) return guard.status();
  Session& s = guard.session();
  math::UsePool workers(&s.workers());  // the session's passes run on its lent threads
  if (s.aborted())
    return s.fail(VEIL_ERR_ABORTED,
                  "%s: the session was aborted by an earlier integrity failure; no further "
                  "results leave it",
                  call);
  P* protocol = s.protocol<P>();
  if (protocol == nullptr)
    return s.fail(VEIL_ERR_ORDER, "%s: this session is not configured for it (call %s first)",
                  call, configured_by);
  int rc = check_args(s, call, args);
  return s.finish_call(rc != VEIL_OK ? rc : body(s, *protocol));
}

}  // namespace veil::enclave
