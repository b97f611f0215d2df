/*
 * moor error codes.
 *
 * Every fallible function in moor returns an int: 0 on success, a negative
 * MOOR_E* code on failure (syscall failures are passed up as -errno, which
 * never collides with the codes below, all of which are <= -1000). One
 * X-macro table gives each code its value, its name and its message, so that
 * the three can never drift apart.
 *
 * New codes are appended at the end of the table; a code's value never
 * changes once released (clients see them).
 */
#ifndef MOOR_COMMON_ERROR_H
#define MOOR_COMMON_ERROR_H

/* X(name, value, message) */
#define MOOR_ERRORS(X)                                                                            \
	X(MOOR_EINVAL, -1000, "invalid argument")                                                 \
	X(MOOR_ENOMEM, -1001, "out of memory")                                                    \
	X(MOOR_ECORRUPT, -1002, "data corruption detected")                                       \
	X(MOOR_ENOTFOUND, -1003, "not found")                                                     \
	X(MOOR_ECOMPACTED, -1004, "mvcc: required revision has been compacted")                   \
	X(MOOR_EFUTUREREV, -1005, "mvcc: required revision is a future revision")                 \
	X(MOOR_EEMPTYKEY, -1006, "key is not provided")                                           \
	X(MOOR_ERANGEEND, -1007, "range_end is below key")                                        \
	X(MOOR_ESORT, -1008, "unknown sort target or order")                                      \
	X(MOOR_ELIMIT, -1009, "limit is negative")                                                \
	X(MOOR_EDUPKEY, -1010, "duplicate key given in txn request")                              \
	X(MOOR_ETOOMANYOPS, -1011, "too many operations in txn request")                          \
	X(MOOR_ETOOLARGE, -1012, "request is too large")                                          \
	X(MOOR_ELEASENOTFOUND, -1013, "requested lease not found")                                \
	X(MOOR_ELEASEEXISTS, -1014, "lease already exists")                                       \
	X(MOOR_EVALUEPROVIDED, -1015, "value is provided")                                        \
	X(MOOR_ELEASEPROVIDED, -1016, "lease is provided")                                        \
	X(MOOR_EKEYNOTFOUND, -1017, "key not found")                                              \
	X(MOOR_ENOLEADER, -1018, "no leader")                                                     \
	X(MOOR_EDROPPED, -1019, "raft proposal dropped")                                          \
	X(MOOR_ETRANSFERRING, -1020, "leadership transfer in progress")                           \
	X(MOOR_ENOTLEADER, -1021, "not leader")                                                   \
	X(MOOR_ESTOPPED, -1022, "stopped after an earlier failure")                               \
	X(MOOR_ECLOSED, -1023, "closed")                                                          \
	X(MOOR_ETIMEOUT, -1024, "request timed out")                                              \
	X(MOOR_ETOOMANYREQUESTS, -1025, "too many requests")                                      \
	X(MOOR_ENOSPACE, -1026, "mvcc: database space exceeded")                                  \
	X(MOOR_EUNAVAILABLE, -1027, "unavailable")                                                \
	X(MOOR_EMEMBEREXISTS, -1028, "member ID already exists")                                  \
	X(MOOR_EMEMBERNOTFOUND, -1029, "member not found")                                        \
	X(MOOR_EPEERURLEXISTS, -1030, "Peer URLs already exists")                                 \
	X(MOOR_ELEARNERNOTREADY, -1031,                                                           \
	  "can only promote a learner member which is in sync with leader")                       \
	X(MOOR_ETOOMANYLEARNERS, -1032, "too many learner members in cluster")                    \
	X(MOOR_EUNSUPPORTED, -1033, "operation not supported")                                    \
	X(MOOR_EBUSY, -1034, "busy")                                                              \
	X(MOOR_EEXIST, -1035, "already exists")                                                   \
	X(MOOR_EPENDINGCONF, -1036, "a configuration change is already pending")                  \
	X(MOOR_ECOMPACTEDLOG, -1037, "requested log index is compacted")                          \
	X(MOOR_EUNAVAILLOG, -1038, "requested log index is unavailable")                          \
	X(MOOR_ESNAPOUTOFDATE, -1039, "requested snapshot is older than the existing one")        \
	X(MOOR_EINDETERMINATE, -1040, "outcome unknown: the request may or may not have applied") \
	X(MOOR_EPROTO, -1041, "protocol error")                                                   \
	X(MOOR_EWATCHCANCELED, -1042, "watch canceled")                                           \
	X(MOOR_ELEASEEXPIRED, -1043, "lease expired")                                             \
	X(MOOR_ECLUSTERMISMATCH, -1044, "cluster ID mismatch")                                    \
	X(MOOR_ELEADERCHANGED, -1045, "leader changed")                                           \
	X(MOOR_ELEARNER, -1046, "rpc not supported for learner")

enum moor_error {
#define MOOR_ERR_ENUM(name, value, msg) name = (value),
	MOOR_ERRORS(MOOR_ERR_ENUM)
#undef MOOR_ERR_ENUM
};

/* A message for any code this file defines, or for -errno; never NULL,
 * static storage. Unknown codes give "unknown error". */
const char *moor_strerror(int code);

/* The code's name ("MOOR_ECOMPACTED", "ENOENT"), never NULL, static storage. */
const char *moor_errname(int code);

#endif
