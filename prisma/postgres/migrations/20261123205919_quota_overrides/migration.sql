-- CreateTable
CREATE TABLE "QuotaOverride" (
    "id" SERIAL NOT NULL,
    "handle" TEXT NOT NULL,
    "maxGpus" INTEGER,
    "gpuHoursPerWeek" DOUBLE PRECISION,
    "maxHours" DOUBLE PRECISION,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "updatedBy" TEXT NOT NULL,

    CONSTRAINT "QuotaOverride_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "QuotaOverride_handle_key" ON "QuotaOverride"("handle");

