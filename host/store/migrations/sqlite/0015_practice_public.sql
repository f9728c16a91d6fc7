-- A practice's public metadata (department, address, coordinates, booking URL, type),
-- as JSON, for the open-data export. NULL: not published.
ALTER TABLE practices ADD COLUMN public_info TEXT;
