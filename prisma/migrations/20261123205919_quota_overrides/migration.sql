-- CreateTable
CREATE TABLE "QuotaOverride" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "handle" TEXT NOT NULL,
    "maxGpus" INTEGER,
    "gpuHoursPerWeek" REAL,
    "maxHours" REAL,
    "updatedAt" DATETIME NOT NULL,
    "updatedBy" TEXT NOT NULL
);

-- CreateIndex
CREATE UNIQUE INDEX "QuotaOverride_handle_key" ON "QuotaOverride"("handle");

