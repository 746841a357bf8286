/*
 * juki — the codes of the register and their check digits.
 *
 * 住民票コード (resident record code): 11 digits, the last a check digit over
 * the first ten with weights 5,4,3,2,7,6,5,4,3,2; sum mod 11; the check is 0
 * when the remainder is 0 or 1, else 11 - remainder.
 *
 * 地方公共団体コード (local-government code, JIS X 0402): 6 digits, the first
 * two the prefecture code (01..47), the last a check digit over the first
 * five with weights 6,5,4,3,2; the check is the last digit of
 * 11 - (sum mod 11).
 */
#ifndef JUKI_CODES_H
#define JUKI_CODES_H

#define JUKI_JUMIN_CODE_LEN 11
#define JUKI_LGCODE_LEN     6

/*
 * juki_jumin_code_check() - validate a 住民票コード.
 * Returns 0, JUKI_EFORMAT (not 11 ASCII digits) or JUKI_ECHECKDIGIT.
 */
int juki_jumin_code_check(const char *code);

/* juki_jumin_check_digit() - the check digit ('0'..'9') of 10 digits, or -1. */
int juki_jumin_check_digit(const char *first10);

/*
 * juki_lgcode_check() - validate a 6-digit local-government code.
 * Returns 0, JUKI_EFORMAT (not 6 ASCII digits, or no prefecture) or
 * JUKI_ECHECKDIGIT.
 */
int juki_lgcode_check(const char *code);

/* juki_lgcode_check_digit() - the check digit ('0'..'9') of 5 digits, or -1. */
int juki_lgcode_check_digit(const char *first5);

/*
 * juki_pref_code_check() - a prefecture code, "01".."47".
 * Returns 0 or JUKI_EFORMAT.
 */
int juki_pref_code_check(const char *code);

#endif
