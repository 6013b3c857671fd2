/* options: table-driven command-line and environment parsing with range checks. */
#ifndef HY_OPTIONS_H
#define HY_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    OPT_FLAG,    /* dest: bool*, no argument */
    OPT_INT,     /* dest: int64_t*, in [min, max] */
    OPT_U64,     /* dest: uint64_t*, in [umin, umax] */
    OPT_DOUBLE,  /* dest: double*, finite */
    OPT_STRING,  /* dest: const char** (points into argv or environ) */
    OPT_CHOICE,  /* dest: int*, index into the '|'-separated choices */
    OPT_FRACTION,/* dest: double*, in (0, 1]; the value is optional (alone: 1); on the
                    command line the next word is taken only if it is a number */
} opt_type_t;

typedef struct opt {
    const char *name;     /* long name without the dashes: "width" */
    char short_name;      /* 'o' for -o, or 0 */
    opt_type_t type;
    void *dest;           /* where the value goes; see opt_type_t */
    int64_t min, max;     /* OPT_INT range, inclusive */
    uint64_t umin, umax;  /* OPT_U64 range, inclusive */
    const char *choices;  /* OPT_CHOICE: "dynamic|static" */
    const char *env;      /* environment variable read before argv, or NULL */
    const char *arg;      /* argument name shown in usage: "N", "FILE" */
    const char *help;     /* one line for usage */
} opt_t;
/* A table ends with an entry whose name is NULL. */

/* Reads the table's environment variables into their destinations.
   Returns 0, or -1 with a one-line reason in err. */
int opts_env(const opt_t *opts, char *err, size_t errlen);

/* Parses argv[start..argc) in "--name value", "--name=value" and "-x value"
   forms. Stops at the first argument that is not an option, or after "--".
   Returns the index of the first argument not consumed, or -1 with a one-line
   reason in err (unknown option, missing or bad value). */
int opts_parse(const opt_t *opts, int argc, char **argv, int start, char *err, size_t errlen);

/* Prints one line per option: "  --width N   help (env HYADES_X)". */
void opts_usage(const opt_t *opts, FILE *out);

/* Whether a tcp:// endpoint's port is a number from min to 65535, or "*"
   where star is allowed; true for other transports. ZeroMQ itself would
   take a larger port modulo 65536 (70000 is 4464). */
bool opts_port_ok(const char *endpoint, long min, bool star);

/* What is wrong with a ZeroMQ endpoint given on the command line (tcp://
   with a port from min_port, * too if star; ipc:// with a path a Unix
   socket address holds), or NULL. */
const char *opts_endpoint_problem(const char *endpoint, long min_port, bool star);

#endif
