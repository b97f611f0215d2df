/*
 * CRC32C (Castagnoli), as used by the WAL's records and HashKV.
 *
 * The SSE4.2 crc32 instruction is used when the CPU has it, a slicing-by-8
 * table otherwise; both give the same results (a unit test checks them
 * against each other and against the published check value 0xE3069283 for
 * "123456789").
 */
#ifndef MOOR_COMMON_CRC32C_H
#define MOOR_COMMON_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend `crc` (0 to start) over `len` bytes. Thread-safe. */
uint32_t moor_crc32c(uint32_t crc, const void *data, size_t len);

/* The table implementation alone, for tests and machines without SSE4.2. */
uint32_t moor_crc32c_sw(uint32_t crc, const void *data, size_t len);

/* 1 when the hardware path is in use. */
int moor_crc32c_hw_available(void);

#endif
