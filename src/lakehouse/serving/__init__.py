"""SQL serving engines over the lakehouse's catalog (cluster profile): Trino catalogs."""
