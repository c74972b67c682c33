/*
 * tools/tools_schema.h - a JSON Schema validator for the subset the catalog
 * uses: type (string, integer, number, boolean, object, array), properties,
 * required, additionalProperties false, enum, minLength/maxLength,
 * minimum/maximum, items, minItems/maxItems. Errors are written for the
 * model: "args.path: expected a string, got 42".
 * Layer: tools/; common/ only. Both cJSON arguments are borrowed.
 */
#ifndef TOOLS_SCHEMA_H
#define TOOLS_SCHEMA_H

#include <cjson/cJSON.h>

#include "mx_err.h"

/* MX_OK when value satisfies schema; MX_ERR_INVALID with the first problem
 * in err ("args" is the root location). */
mx_err tools_schema_validate(const cJSON *schema, const cJSON *value, char *err);

#endif
