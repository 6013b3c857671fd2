/* options: table-driven command-line and environment parsing with range checks. */
#include "common/options.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const opt_t *s_find_long(const opt_t *opts, const char *name, size_t len)
{
    for (const opt_t *o = opts; o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

static const opt_t *s_find_short(const opt_t *opts, char c)
{
    for (const opt_t *o = opts; o->name; o++)
        if (o->short_name && o->short_name == c)
            return o;
    return NULL;
}

/* A whole decimal integer: optional '-' (when allowed), then digits only. */
static bool s_decimal(const char *value, bool negative_ok)
{
    const char *p = value;
    if (*p == '-' && negative_ok)
        p++;
    if (!*p)
        return false;
    for (; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return true;
}

/* A number as people write it: no spaces, no '+', no hex or "inf". */
static bool s_plain_number(const char *value)
{
    if (!*value || *value == '+' || *value == ' ')
        return false;
    for (const char *p = value; *p; p++)
        if (!strchr("0123456789.-eE", *p))
            return false;
    return true;
}

/* Stores one value; "from" names its source for the error message. */
static int s_store(const opt_t *o, const char *value, const char *from, char *err, size_t errlen)
{
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case OPT_FLAG:
        *(bool *) o->dest = true;
        return 0;
    case OPT_INT: {
        long long v = strtoll(value, &end, 10);
        if (!s_decimal(value, o->min < 0) || errno || end == value || *end || v < o->min || v > o->max) {
            snprintf(err, errlen, "%s: expected an integer from %" PRId64 " to %" PRId64 ", got '%s'",
                     from, o->min, o->max, value);
            return -1;
        }
        *(int64_t *) o->dest = v;
        return 0;
    }
    case OPT_U64: {
        unsigned long long v = strtoull(value, &end, 10);
        if (!s_decimal(value, false) || errno || end == value || *end || v < o->umin || v > o->umax) {
            snprintf(err, errlen, "%s: expected an integer from %" PRIu64 " to %" PRIu64 ", got '%s'",
                     from, o->umin, o->umax, value);
            return -1;
        }
        *(uint64_t *) o->dest = v;
        return 0;
    }
    case OPT_DOUBLE: {
        double v = strtod(value, &end);
        /* (ERANGE with a finite result: so small it is subnormal or zero,
           the nearest double as for any decimal) */
        if (!s_plain_number(value) || (errno && !(errno == ERANGE && isfinite(v))) || end == value || *end
            || !isfinite(v)) {
            snprintf(err, errlen, "%s: expected a finite number, got '%s'", from, value);
            return -1;
        }
        *(double *) o->dest = v;
        return 0;
    }
    case OPT_FRACTION: {
        double v = strtod(value, &end);
        if (!s_plain_number(value) || errno || end == value || *end || !(v > 0 && v <= 1)) {
            snprintf(err, errlen, "%s: expected a fraction above 0 and at most 1, got '%s'", from, value);
            return -1;
        }
        *(double *) o->dest = v;
        return 0;
    }
    case OPT_STRING:
        if (!*value) {
            snprintf(err, errlen, "%s: expected a non-empty value", from);
            return -1;
        }
        *(const char **) o->dest = value;
        return 0;
    case OPT_CHOICE: {
        const char *c = o->choices;
        size_t len = strlen(value);
        for (int i = 0; c && *c; i++) {
            const char *bar = strchr(c, '|');
            size_t clen = bar ? (size_t) (bar - c) : strlen(c);
            if (clen == len && strncmp(c, value, len) == 0) {
                *(int *) o->dest = i;
                return 0;
            }
            c = bar ? bar + 1 : NULL;
        }
        snprintf(err, errlen, "%s: expected one of %s, got '%s'", from, o->choices, value);
        return -1;
    }
    }
    return -1;
}

int opts_env(const opt_t *opts, char *err, size_t errlen)
{
    for (const opt_t *o = opts; o->name; o++) {
        const char *value = o->env ? getenv(o->env) : NULL;
        if (!value || !*value)
            continue;
        if (o->type == OPT_FLAG) {
            static const char *yes[] = {"1", "true", "yes", "on"}, *no[] = {"0", "false", "no", "off"};
            int v = -1;
            for (size_t i = 0; i < 4 && v < 0; i++)
                v = strcasecmp(value, yes[i]) == 0 ? 1 : strcasecmp(value, no[i]) == 0 ? 0 : -1;
            if (v < 0) {
                snprintf(err, errlen, "%s: expected 1/0, true/false, yes/no or on/off, got '%s'", o->env, value);
                return -1;
            }
            *(bool *) o->dest = v;
            continue;
        }
        if (s_store(o, value, o->env, err, errlen) < 0)
            return -1;
    }
    return 0;
}

int opts_parse(const opt_t *opts, int argc, char **argv, int start, char *err, size_t errlen)
{
    int i = start;
    while (i < argc) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            return i + 1;
        if (a[0] != '-' || a[1] == '\0')
            return i;   /* first positional argument */
        const opt_t *o;
        const char *inline_value = NULL;
        char from[80];
        if (a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t) (eq - name) : strlen(name);
            o = s_find_long(opts, name, len);
            if (eq)
                inline_value = eq + 1;
            snprintf(from, sizeof from, "--%.*s", (int) len, name);
        } else {
            o = a[2] ? NULL : s_find_short(opts, a[1]);
            snprintf(from, sizeof from, "%s", a);
        }
        if (!o) {
            snprintf(err, errlen, "unknown option '%s'", a);
            return -1;
        }
        i++;
        if (o->type == OPT_FLAG) {
            if (inline_value) {
                snprintf(err, errlen, "%s takes no value", from);
                return -1;
            }
            *(bool *) o->dest = true;
            continue;
        }
        const char *value = inline_value;
        if (!value && o->type == OPT_FRACTION) {
            char *end = NULL;
            if (i < argc && argv[i][0] != '-' && (strtod(argv[i], &end), end != argv[i] && !*end))
                value = argv[i++];
            else
                value = "1";
        }
        if (!value) {
            if (i >= argc) {
                snprintf(err, errlen, "%s needs a value (%s)", from, o->arg ? o->arg : "VALUE");
                return -1;
            }
            value = argv[i++];
        }
        if (s_store(o, value, from, err, errlen) < 0)
            return -1;
    }
    return i;
}

void opts_usage(const opt_t *opts, FILE *out)
{
    for (const opt_t *o = opts; o->name; o++) {
        char left[64];
        const char *arg = o->type == OPT_FLAG ? "" : o->arg ? o->arg : "VALUE";
        char optional[40];
        if (o->type == OPT_FRACTION) {
            snprintf(optional, sizeof optional, "[%s]", arg);
            arg = optional;
        }
        if (o->short_name)
            snprintf(left, sizeof left, "-%c, --%s %s", o->short_name, o->name, arg);
        else
            snprintf(left, sizeof left, "    --%s %s", o->name, arg);
        fprintf(out, "  %-28s %s", left, o->help ? o->help : "");
        if (o->env)
            fprintf(out, " [env %s]", o->env);
        fputc('\n', out);
    }
}

bool opts_port_ok(const char *endpoint, long min, bool star)
{
    const char *port = strncmp(endpoint, "tcp://", 6) == 0 ? strrchr(endpoint, ':') : NULL;
    if (!port)
        return true;
    if (strcmp(port, ":*") == 0)
        return star;
    size_t digits = strspn(port + 1, "0123456789");
    return digits > 0 && digits <= 5 && port[1 + digits] == '\0' && atol(port + 1) >= min && atol(port + 1) <= 65535;
}

const char *opts_endpoint_problem(const char *endpoint, long min_port, bool star)
{
    if (strncmp(endpoint, "ipc://", 6) == 0) {
        size_t len = strlen(endpoint + 6);
        if (len == 0)
            return "an ipc:// endpoint needs a path";
        if (len > 107)   /* what a Unix socket address holds */
            return "the path of an ipc:// endpoint is longer than 107 bytes";
        return NULL;
    }
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return "an endpoint is tcp://ADDRESS:PORT or ipc://PATH";
    if (!opts_port_ok(endpoint, min_port, star))
        return min_port ? "the port must be a number from 1 to 65535" : "the port must be a number from 0 to 65535, or *";
    return NULL;
}
