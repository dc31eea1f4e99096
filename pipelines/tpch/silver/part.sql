-- silver.part: parts, typed (TPC-H types), strings trimmed (empty is NULL), one row per
-- primary key (p_partkey): the most recently ingested version wins.
-- Bronze holds the types inferred from the CSV (BIGINT keys, DOUBLE prices, DATE dates,
-- VARCHAR text); the casts pin the TPC-H types (exact DECIMAL money, INTEGER keys)
-- whatever a batch inferred (docs/pipelines-spec.md, "Bronze types are inferred").
SELECT
    CAST(p_partkey AS INTEGER) AS p_partkey,
    NULLIF(TRIM(p_name), '') AS p_name,
    NULLIF(TRIM(p_mfgr), '') AS p_mfgr,
    NULLIF(TRIM(p_brand), '') AS p_brand,
    NULLIF(TRIM(p_type), '') AS p_type,
    CAST(p_size AS INTEGER) AS p_size,
    NULLIF(TRIM(p_container), '') AS p_container,
    CAST(p_retailprice AS DECIMAL(15,2)) AS p_retailprice,
    NULLIF(TRIM(p_comment), '') AS p_comment,
    _batch_id,
    _ingested_at
FROM (
    SELECT
        *,
        ROW_NUMBER() OVER (
            PARTITION BY p_partkey
            ORDER BY _ingested_at DESC, _batch_id DESC, _source_file DESC
        ) AS _version
    FROM bronze.part
) AS latest
WHERE _version = 1
