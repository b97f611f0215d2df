/*
 * Assertions that stay on in release builds.
 *
 * MOOR_ASSERT guards invariants whose violation means memory or data is
 * already wrong: continuing would only spread the damage, so it prints the
 * file, line and expression and aborts (a core dump beats silent corruption).
 * Input from outside (disk, network, clients) is never checked with it: that
 * gets an error code.
 */
#ifndef MOOR_COMMON_ASSERT_H
#define MOOR_COMMON_ASSERT_H

_Noreturn void moor_assert_fail(const char *expr, const char *file, int line);

#define MOOR_ASSERT(expr) ((expr) ? (void)0 : moor_assert_fail(#expr, __FILE__, __LINE__))

#endif
