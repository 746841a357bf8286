#include <string.h>

#include "juki/base/codes.h"
#include "juki/base/error.h"

static int
all_digits(const char *s, size_t n)
{
	if (s == NULL || strlen(s) != n) {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9') {
			return 0;
		}
	}
	return 1;
}

int
juki_jumin_check_digit(const char *first10)
{
	static const int weights[10] = {5, 4, 3, 2, 7, 6, 5, 4, 3, 2};
	int sum = 0, rem;

	for (int i = 0; i < 10; i++) {
		if (first10[i] < '0' || first10[i] > '9') {
			return -1;
		}
		sum += (first10[i] - '0') * weights[i];
	}
	rem = sum % 11;
	return '0' + (rem <= 1 ? 0 : 11 - rem);
}

int
juki_jumin_code_check(const char *code)
{
	if (!all_digits(code, JUKI_JUMIN_CODE_LEN)) {
		return JUKI_EFORMAT;
	}
	return juki_jumin_check_digit(code) == code[10] ? 0 : JUKI_ECHECKDIGIT;
}

int
juki_lgcode_check_digit(const char *first5)
{
	int sum = 0;

	for (int i = 0; i < 5; i++) {
		if (first5[i] < '0' || first5[i] > '9') {
			return -1;
		}
		sum += (first5[i] - '0') * (6 - i);
	}
	return '0' + (11 - sum % 11) % 10;
}

int
juki_lgcode_check(const char *code)
{
	char pref[3];

	if (!all_digits(code, JUKI_LGCODE_LEN)) {
		return JUKI_EFORMAT;
	}
	/* A code outside every prefecture names no government, whatever its check digit. */
	memcpy(pref, code, 2);
	pref[2] = '\0';
	if (juki_pref_code_check(pref) != 0) {
		return JUKI_EFORMAT;
	}
	return juki_lgcode_check_digit(code) == code[5] ? 0 : JUKI_ECHECKDIGIT;
}

int
juki_pref_code_check(const char *code)
{
	int n;

	if (!all_digits(code, 2)) {
		return JUKI_EFORMAT;
	}
	n = (code[0] - '0') * 10 + (code[1] - '0');
	return n >= 1 && n <= 47 ? 0 : JUKI_EFORMAT;
}
