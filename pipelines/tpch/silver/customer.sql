-- silver.customer: customers, typed (TPC-H types), strings trimmed (empty is NULL), one row
-- per primary key (c_custkey): the most recently ingested version wins.
-- Bronze holds the types inferred from the CSV (BIGINT keys, DOUBLE prices, DATE dates,
-- VARCHAR text); the casts pin the TPC-H types (exact DECIMAL money, INTEGER keys)
-- whatever a batch inferred (docs/pipelines-spec.md, "Bronze types are inferred").
SELECT
    CAST(c_custkey AS INTEGER) AS c_custkey,
    NULLIF(TRIM(c_name), '') AS c_name,
    NULLIF(TRIM(c_address), '') AS c_address,
    CAST(c_nationkey AS INTEGER) AS c_nationkey,
    NULLIF(TRIM(c_phone), '') AS c_phone,
    CAST(c_acctbal AS DECIMAL(15,2)) AS c_acctbal,
    NULLIF(TRIM(c_mktsegment), '') AS c_mktsegment,
    NULLIF(TRIM(c_comment), '') AS c_comment,
    _batch_id,
    _ingested_at
FROM (
    SELECT
        *,
        ROW_NUMBER() OVER (
            PARTITION BY c_custkey
            ORDER BY _ingested_at DESC, _batch_id DESC, _source_file DESC
        ) AS _version
    FROM bronze.customer
) AS latest
WHERE _version = 1
