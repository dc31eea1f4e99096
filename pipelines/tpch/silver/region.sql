-- silver.region: the five regions, typed (TPC-H types), strings trimmed (empty is NULL),
-- one row per primary key (r_regionkey): the most recently ingested version wins.
SELECT
    CAST(r_regionkey AS INTEGER) AS r_regionkey,
    NULLIF(TRIM(r_name), '') AS r_name,
    NULLIF(TRIM(r_comment), '') AS r_comment,
    _batch_id,
    _ingested_at
FROM (
    SELECT
        *,
        ROW_NUMBER() OVER (
            PARTITION BY r_regionkey
            ORDER BY _ingested_at DESC, _batch_id DESC, _source_file DESC
        ) AS _version
    FROM bronze.region
) AS latest
WHERE _version = 1
