-- CreateTable
CREATE TABLE "GpuSample" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "hostName" TEXT NOT NULL,
    "gpuIndex" INTEGER NOT NULL,
    "at" DATETIME NOT NULL,
    "utilization" REAL,
    "utilizationMax" REAL,
    "memoryUsedMiB" REAL,
    "samples" INTEGER NOT NULL
);

-- CreateIndex
CREATE INDEX "GpuSample_at_idx" ON "GpuSample"("at");

-- CreateIndex
CREATE UNIQUE INDEX "GpuSample_hostName_gpuIndex_at_key" ON "GpuSample"("hostName", "gpuIndex", "at");

