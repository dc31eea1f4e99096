-- A line item is received after it ships (TPC-H 4.2.3: receipt = ship + 1..30 days).
SELECT l_orderkey, l_linenumber, l_shipdate, l_receiptdate
FROM silver.lineitem
WHERE l_receiptdate <= l_shipdate
