-- CreateTable
CREATE TABLE "GpuSample" (
    "id" SERIAL NOT NULL,
    "hostName" TEXT NOT NULL,
    "gpuIndex" INTEGER NOT NULL,
    "at" TIMESTAMP(3) NOT NULL,
    "utilization" DOUBLE PRECISION,
    "utilizationMax" DOUBLE PRECISION,
    "memoryUsedMiB" DOUBLE PRECISION,
    "samples" INTEGER NOT NULL,

    CONSTRAINT "GpuSample_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "GpuSample_at_idx" ON "GpuSample"("at");

-- CreateIndex
CREATE UNIQUE INDEX "GpuSample_hostName_gpuIndex_at_key" ON "GpuSample"("hostName", "gpuIndex", "at");

