/*
 * juki — lower-case hexadecimal, as digests are written in receipts,
 * backups and the update-count reconciliation.
 */
#ifndef JUKI_HEX_H
#define JUKI_HEX_H

#include <stddef.h>

/*
 * juki_hex_encode() - write the n bytes of in as 2n lower-case hex digits
 * and a '\0' into out, which holds at least 2n + 1 bytes.
 */
void juki_hex_encode(const unsigned char *in, size_t n, char *out);

/*
 * juki_hex_decode() - n bytes from hex, which must be exactly 2n lower-case
 * hex digits (as juki_hex_encode() writes them).  0, or JUKI_EFORMAT for
 * NULL, another length or another character.
 */
int juki_hex_decode(const char *hex, unsigned char *out, size_t n);

#endif
